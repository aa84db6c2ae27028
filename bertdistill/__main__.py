from bertdistill.cli import main

main()

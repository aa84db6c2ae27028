"""ONNX export with a parity check (``bertdistill export``)."""

from bertdistill.export.exporter import ExportConfig, ExportReport, export_model, read_report

__all__ = ["ExportConfig", "ExportReport", "export_model", "read_report"]

"""The verdict of a bench (bertdistill.bench.verdict, the demo's last lines) does not flip with which backend
wins a timing race."""

from __future__ import annotations

from dataclasses import asdict

from bertdistill.bench import verdict as verdict_module


class verdict:  # noqa: N801 - the tests read the verdicts as dicts, with the demo's targets
    @staticmethod
    def judge(result: dict, students=None) -> list[dict]:
        return [asdict(v) for v in verdict_module.judge(result, 0.95, 3.0, students)]


def _result(teacher_speed: dict[str, float], student_speed: dict[str, float]) -> dict:
    """Bench JSON of a teacher and a student on three backends each, with these throughputs (batch 32)."""
    maps = {"teacher-bf16": 0.9699, "teacher-int8": 0.9560, "teacher": 0.9690,
            "student-bf16": 0.9200, "student-int8": 0.9180, "student": 0.9210}
    speeds = {**teacher_speed, **student_speed}
    models = [{"name": n, "metrics": {"map": m}, "throughput_ex_s": {"1": 1.0, "32": speeds[n]}} for n, m in maps.items()]

    def fastest(rows):
        top = max(rows, key=lambda r: speeds[r])
        return {"model": top, "rows": rows, "backend": top, "throughput_ex_s": speeds[top]}

    teacher, student = fastest(list(teacher_speed)), fastest(list(student_speed))
    student["speedup_vs_baseline_fastest"] = student["throughput_ex_s"] / teacher["throughput_ex_s"]
    student["speedup_paired_median"] = student["speedup_vs_baseline_fastest"]
    return {"main_metric": "map", "baseline": "teacher", "settings": {"batch_sizes": [1, 32]}, "models": models,
            "fastest": [teacher, student]}


def test_the_verdict_is_the_same_whichever_teacher_backend_wins():
    # Issue 34: int8 won the teacher's timing in one run (verdict met), bf16 in the next (missed).
    int8_won = verdict.judge(_result({"teacher": 300, "teacher-bf16": 760, "teacher-int8": 770},
                                     {"student": 1700, "student-bf16": 3000, "student-int8": 2900}))[0]
    bf16_won = verdict.judge(_result({"teacher": 300, "teacher-bf16": 770, "teacher-int8": 760},
                                     {"student": 1700, "student-bf16": 3000, "student-int8": 2900}))[0]
    assert int8_won["teacher_best"] == bf16_won["teacher_best"] == 0.9699
    assert int8_won["retention"] == bf16_won["retention"] and int8_won["met"] == bf16_won["met"]
    assert abs(int8_won["speedup"] - bf16_won["speedup"]) < 0.1


def test_the_student_is_judged_on_its_lowest_metric_among_near_tied_backends():
    tie = verdict.judge(_result({"teacher": 300, "teacher-bf16": 760, "teacher-int8": 700},
                                {"student": 1700, "student-bf16": 3000, "student-int8": 2950}))[0]
    assert set(tie["contenders"]) == {"student-bf16", "student-int8"} and tie["metric"] == 0.9180
    clear = verdict.judge(_result({"teacher": 300, "teacher-bf16": 760, "teacher-int8": 700},
                                  {"student": 1700, "student-bf16": 3000, "student-int8": 2000}))[0]
    assert clear["contenders"] == ["student-bf16"] and clear["metric"] == 0.9200
    assert clear["met"] is False  # 0.92 / 0.9699 = 94.9%
    assert abs(clear["retention"] - 0.92 / 0.9699) < 1e-9 and clear["speedup"] > 3


def test_only_the_students_named_are_judged_and_the_lines_say_met_or_missed():
    result = _result({"teacher": 300, "teacher-bf16": 760, "teacher-int8": 700},
                     {"student": 1700, "student-bf16": 3000, "student-int8": 2000})
    assert verdict.judge(result, students=["someone-else"]) == []
    lines = verdict_module.verdict_lines(result, 0.95, 3.0, ["student-bf16"])
    assert lines[0].startswith("teacher at its fastest backend (teacher-bf16): 760 ex/s at batch 32")
    assert "0.9699 (teacher-bf16)" in lines[0]
    assert lines[1].startswith("student-bf16 at its fastest backend (student-bf16): 3000 ex/s, 3.95×")
    assert lines[1].endswith("= 94.9% of the teacher's best (targets ≥ 95% at ≥ 3×: MISSED)")
    assert verdict_module.verdict_lines(result)[1].endswith("(no targets set)")

"""PKD layer maps (skip and last) and student layer selection."""

import pytest

from bertdistill.errors import UserError
from bertdistill.student.build import student_layer_indices
from bertdistill.training.pkd import pkd_layer_map


@pytest.mark.parametrize("teacher,student,skip,last", [
    (12, 6, [2, 4, 6, 8, 10], [7, 8, 9, 10, 11]),
    (12, 3, [4, 8], [10, 11]),
    (6, 3, [2, 4], [4, 5]),
    (6, 2, [3], [5]),
])
def test_pkd_maps(teacher, student, skip, last):
    assert pkd_layer_map(teacher, student, "skip") == list(zip(range(1, student), skip))
    assert pkd_layer_map(teacher, student, "last") == list(zip(range(1, student), last))
    assert pkd_layer_map(teacher, student, "none") == []


def test_pkd_map_refuses_deeper_student_and_unknown_mode():
    with pytest.raises(UserError, match="deeper than the 3-layer teacher"):
        pkd_layer_map(3, 6, "skip")
    with pytest.raises(UserError, match="unknown PKD mode"):
        pkd_layer_map(12, 6, "middle")


def test_student_layer_selection():
    assert student_layer_indices(12, 3, "first") == [1, 2, 3]
    assert student_layer_indices(12, 6, "skip") == [2, 4, 6, 8, 10, 12]
    assert student_layer_indices(6, None, "first") == [1, 2, 3, 4, 5, 6]
    assert student_layer_indices(12, None, "1,5,9") == [1, 5, 9]
    with pytest.raises(UserError, match="outside"):
        student_layer_indices(6, None, "1,7")
    with pytest.raises(UserError, match="outside"):
        student_layer_indices(6, 8, "first")
    with pytest.raises(UserError, match="not first, skip"):
        student_layer_indices(6, 2, "top")

"""The checks a document passes before it is stored and shared to Procore
(hub/sync/document_upload.py): each refusal says what is wrong; a good file keeps a safe name
and gets its extension's content type."""

import pytest

from hub.errors import ValidationError
from hub.sync.document_upload import MAX_BYTES, check_file, safe_name

PDF = b"%PDF-1.7\n..."


@pytest.mark.parametrize(("name", "declared", "stored"), [
    ("plan.pdf", "application/pdf", ("plan.pdf", "application/pdf")),
    ("PLAN.PDF", "", ("PLAN.PDF", "application/pdf")),  # no declared type, upper-case extension
    ("C:\\Users\\me\\plan.pdf", "application/octet-stream", ("plan.pdf", "application/pdf")),
    ("../../etc/plan.pdf", "application/pdf; charset=binary", ("plan.pdf", "application/pdf")),
    ("pl\x00an\n.pdf", "application/pdf", ("plan.pdf", "application/pdf")),
])
def test_a_good_file_keeps_a_safe_name_and_its_extensions_type(name, declared, stored):
    assert check_file(name, declared, PDF) == stored


def test_notes_in_csv_declared_as_excel_are_taken_as_csv():
    assert check_file("costs.csv", "application/vnd.ms-excel", b"a,b\n1,2\n") == ("costs.csv", "text/csv")


@pytest.mark.parametrize(("name", "declared", "content", "message"), [
    ("big.pdf", "application/pdf", PDF + b"0" * MAX_BYTES, "big.pdf is 10.0 MB; files can be at most 10.0 MB."),
    ("empty.pdf", "application/pdf", b"", "empty.pdf is empty."),
    ("run.sh", "text/x-shellscript", b"#!/bin/sh", "run.sh: .sh cannot be shared; allowed:"),
    ("README", "text/plain", b"hello", "README: files without an extension cannot be shared"),
    ("plan.pdf", "text/html", PDF, "plan.pdf says it is text/html, which does not match .pdf"),
    ("photo.jpg", "image/jpeg", b"\x89PNG\r\n\x1a\n", "photo.jpg is not a real JPG file"),
    ("/", "application/pdf", PDF, "The file has no name."),
    ("...", "application/pdf", PDF, "The file has no name."),
])
def test_a_bad_file_is_refused_saying_why(name, declared, content, message):
    with pytest.raises(ValidationError) as refused:
        check_file(name, declared, content)
    assert message in str(refused.value)


def test_the_size_given_counts_when_only_part_was_read():
    with pytest.raises(ValidationError, match="is 20.0 MB"):
        check_file("plan.pdf", "application/pdf", PDF, size=20 * 1024 * 1024)


def test_a_long_name_is_cut_keeping_its_extension():
    name = safe_name("x" * 500 + ".pdf")
    assert len(name) == 200 and name.endswith(".pdf")

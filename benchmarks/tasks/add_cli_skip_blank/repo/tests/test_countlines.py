from countlines import main


def test_counts_and_total(tmp_path, capsys):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("x\n\ny\n")
    b.write_text("z\n")
    assert main([str(a), str(b)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"3 {a}", f"1 {b}", "4 total"]

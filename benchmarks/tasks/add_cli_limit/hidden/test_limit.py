from wordfreq import main


def test_limit(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("c c c b b a d")
    main(["--limit", "2", str(path)])
    assert capsys.readouterr().out == "3 c\n2 b\n"
    main([str(path), "--limit", "10"])
    assert capsys.readouterr().out == "3 c\n2 b\n1 a\n1 d\n"
    main([str(path)])
    assert capsys.readouterr().out.count("\n") == 4

from wordfreq import count_words, main


def test_count_words():
    assert count_words("b a b") == [("b", 2), ("a", 1)]


def test_main_prints_every_word(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("one two two")
    main([str(path)])
    assert capsys.readouterr().out == "2 two\n1 one\n"

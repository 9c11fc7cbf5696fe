from settings import load_settings


def write(tmp_path, text):
    path = tmp_path / "s.env"
    path.write_text(text)
    return str(path)


def test_all_defaults(tmp_path):
    s = load_settings(write(tmp_path, "# nothing\n"))
    assert (s.host, s.port, s.debug) == ("127.0.0.1", 8000, False)


def test_some_keys(tmp_path):
    s = load_settings(write(tmp_path, "debug = TRUE\n"))
    assert (s.host, s.port, s.debug) == ("127.0.0.1", 8000, True)


def test_every_key(tmp_path):
    s = load_settings(write(tmp_path, "host=example.org\nport=9000\ndebug=false\n"))
    assert (s.host, s.port, s.debug) == ("example.org", 9000, False)

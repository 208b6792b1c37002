"""`ferlite check` fails on what `ferlite run` would refuse or could not use: a port already taken, a broker
name that does not resolve or a broker that is down, a password file that is not there. Real sockets and
Debian's mosquitto on loopback."""

from __future__ import annotations

import socket

from live import Broker, free_port, service, wait_for_port, write_config

from ferlite.cli import main


def check(config, capsys, *sets: str) -> tuple[int, str, str]:
    args = ["check", "--config", str(config), "--frames", "1"]
    for item in sets:
        args += ["--set", item]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_fails_on_a_port_in_use(tmp_path, capsys):
    port = free_port()
    config = write_config(tmp_path / "config.toml", http={"enabled": True, "listen": f"127.0.0.1:{port}"})
    assert check(config, capsys)[0] == 0  # free: ok
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code, out, err = check(config, capsys)
    assert code == 1 and "ok:" not in out
    assert f"ferlite check: http: [http] listen = 127.0.0.1:{port}: cannot serve there: Address already in use" \
           in err, err


def test_a_port_the_running_service_holds_is_not_a_problem(tmp_path, capsys):
    """install.sh re-run on a running device (the documented update) checks the new config while the old
    service serves: its own port is handed over on restart, another program's is not."""
    port = free_port()
    config = write_config(tmp_path / "config.toml", http={"enabled": True, "listen": f"127.0.0.1:{port}"})
    with service(config, tmp_path / "service.log") as proc:
        wait_for_port(port, proc=proc)
        code, out, err = check(config, capsys)
    assert code == 0, err
    assert f"port {port} is held by the running service (pid {proc.pid}); a restart hands it over" in out


def test_check_fails_on_a_broker_it_cannot_resolve_or_reach_and_a_missing_password_file(tmp_path, capsys):
    broker = Broker().start()
    try:
        config = write_config(tmp_path / "config.toml", mqtt={"enabled": True, "host": "127.0.0.1",
                                                              "port": broker.port})
        assert check(config, capsys)[0] == 0  # the broker is up: ok
        code, out, err = check(config, capsys, "mqtt.host=no-such-broker.invalid")
        assert code == 1 and "ok:" not in out
        assert "ferlite check: mqtt: [mqtt] host = no-such-broker.invalid" in err and "cannot resolve" in err, err
        secret = tmp_path / "missing-password"
        code, out, err = check(config, capsys, "mqtt.username=kiosk", f"mqtt.password_file={secret}")
        assert code == 2 and f"ferlite check: mqtt: [mqtt] password_file = {secret}: No such file" in err, err
    finally:
        broker.stop()
    code, out, err = check(config, capsys)  # the broker stopped: refused
    assert code == 1 and "the broker cannot be reached (Connection refused)" in err, err

"""Start an Xvfb display for Kivy tests (the display number is chosen by Xvfb itself)."""

from __future__ import annotations

import os
import shutil
import subprocess


class Xvfb:
    def __init__(self, width: int = 1280, height: int = 800) -> None:
        self.width, self.height = width, height
        self.proc: subprocess.Popen | None = None
        self.display: str | None = None

    def start(self) -> str:
        if shutil.which("Xvfb") is None:
            raise RuntimeError("Xvfb is not installed: run ./run-tests (it installs it) or apt-get install xvfb")
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0",
             f"{self.width}x{self.height}x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not report a display number")
        self.display = f":{number}"
        return self.display

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

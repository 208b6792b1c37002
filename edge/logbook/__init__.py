"""The expression log, read back: the fast reader (read, scan), the counts behind ``/api/history`` (history),
``ferlite report`` and the device's ``/report`` page (report, plots), and a synthetic log for benchmarks and
notebooks (synth). history needs only the standard library; the report needs the ``report`` extra (pandas,
matplotlib), never TensorFlow."""

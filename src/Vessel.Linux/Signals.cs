namespace Vessel.Linux;

/// <summary>Signal names and numbers on x86_64 Linux, accepting every form callers send: 9, KILL, SIGKILL.</summary>
public static class Signals
{
    private static readonly (string Name, int Number)[] Table =
    [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7), ("FPE", 8),
        ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14), ("TERM", 15),
        ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22),
        ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29),
        ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ];

    public const int SIGKILL = 9, SIGTERM = 15, SIGWINCH = 28, SIGCONT = 18;

    public static bool TryParse(string text, out int signal)
    {
        if (int.TryParse(text, out signal)) return signal is > 0 and <= 64;
        var name = text.ToUpperInvariant();
        if (name.StartsWith("SIG", StringComparison.Ordinal)) name = name[3..];
        if (name.StartsWith("RTMIN", StringComparison.Ordinal) || name.StartsWith("RTMAX", StringComparison.Ordinal))
        {
            var rest = name[5..];
            var offset = rest.Length == 0 ? 0 : int.TryParse(rest, out var o) ? o : int.MinValue;
            signal = name.StartsWith("RTMIN", StringComparison.Ordinal) ? 34 + offset : 64 + offset;
            return offset != int.MinValue && signal is >= 34 and <= 64;
        }
        foreach (var (n, number) in Table)
            if (n == name) { signal = number; return true; }
        signal = 0;
        return false;
    }

    public static string Name(int signal)
    {
        foreach (var (n, number) in Table) if (number == signal) return "SIG" + n;
        return signal.ToString();
    }
}

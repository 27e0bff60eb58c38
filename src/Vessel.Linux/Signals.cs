namespace Vessel.Linux;

/// <summary>Signal names and numbers on x86_64 Linux, accepting every form callers send: 9, KILL, SIGKILL.</summary>
public static class Signals
{
    private static readonly (string Name, int Number)[] Table =
    [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7), ("FPE", 8),
        ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14), ("TERM", 15),
        ("STKFLT", 16), ("CHLD", 17), ("CLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22),
        ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29),
        ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ];

    public const int SIGKILL = 9, SIGTERM = 15, SIGWINCH = 28, SIGCONT = 18;

    /// <summary>Docker's rules (signal.ParseSignal): a number 1–64, or a name with or without SIG in any case, including
    /// RTMIN, RTMIN+1 … RTMIN+15, RTMAX-14 … RTMAX-1 and RTMAX.</summary>
    public static bool TryParse(string text, out int signal)
    {
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out signal))
            return signal is > 0 and <= 64;
        var name = text.ToUpperInvariant();
        if (name.StartsWith("SIG", StringComparison.Ordinal)) name = name[3..];
        signal = name switch
        {
            "RTMIN" => 34,
            "RTMAX" => 64,
            _ when name.StartsWith("RTMIN+", StringComparison.Ordinal) && Offset(name[6..], 15) is int k => 34 + k,
            _ when name.StartsWith("RTMAX-", StringComparison.Ordinal) && Offset(name[6..], 14) is int k => 64 - k,
            _ => Array.Find(Table, t => t.Name == name).Number,
        };
        return signal > 0;

        static int? Offset(string s, int max) =>
            int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k) && k >= 1 && k <= max ? k : null;
    }

    public static string Name(int signal)
    {
        foreach (var (n, number) in Table) if (number == signal) return "SIG" + n;
        return signal.ToString();
    }
}

using System.Globalization;

namespace Vessel.Engine.Build;

/// <summary>STOPSIGNAL's check, as Docker's signal.ParseSignal: a number 1–64, or a Linux signal name with or
/// without SIG, any case, including RTMIN+n / RTMAX-n. The value is stored as written.</summary>
internal static class StopSignals
{
    private static readonly HashSet<string> Names =
    [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL", "PROF",
        "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2",
        "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
    ];

    public static bool IsValid(string s)
    {
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n)) return n is > 0 and <= 64;
        string name = s.ToUpperInvariant();
        if (name.StartsWith("SIG", StringComparison.Ordinal)) name = name[3..];
        if (Names.Contains(name)) return true;
        // RTMIN+1 … RTMIN+15, RTMAX-1 … RTMAX-14 (Go's map for Linux).
        if (name.StartsWith("RTMIN+", StringComparison.Ordinal))
            return int.TryParse(name[6..], NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k is >= 1 and <= 15;
        if (name.StartsWith("RTMAX-", StringComparison.Ordinal))
            return int.TryParse(name[6..], NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k is >= 1 and <= 14;
        return false;
    }
}

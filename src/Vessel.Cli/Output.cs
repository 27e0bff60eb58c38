using System.Globalization;
using System.Text;

namespace Vessel.Cli;

/// <summary>Human formats the way docker prints them (go-units and text/tabwriter).</summary>
internal static class Human
{
    private static readonly string[] Units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

    /// <summary>go-units HumanSize: decimal units, 3 significant digits ("5.58MB", "123kB", "5B").</summary>
    public static string Size(double size)
    {
        int i = 0;
        while (size >= 1000 && i < Units.Length - 1) { size /= 1000; i++; }
        return size.ToString("G3", CultureInfo.InvariantCulture) + Units[i];
    }

    /// <summary>go-units HumanDuration ("About a minute", "5 minutes", "3 weeks").</summary>
    public static string Duration(TimeSpan d)
    {
        double seconds = d.TotalSeconds;
        if (seconds < 1) return "Less than a second";
        if ((int)seconds == 1) return "1 second";
        if (seconds < 60) return $"{(int)seconds} seconds";
        int minutes = (int)d.TotalMinutes;
        if (minutes == 1) return "About a minute";
        if (minutes < 60) return $"{minutes} minutes";
        int hours = (int)Math.Round(d.TotalHours);
        if (hours == 1) return "About an hour";
        if (hours < 48) return $"{hours} hours";
        if (hours < 24 * 7 * 2) return $"{hours / 24} days";
        if (hours < 24 * 30 * 2) return $"{hours / 24 / 7} weeks";
        if (hours < 24 * 365 * 2) return $"{hours / 24 / 30} months";
        return $"{(int)(d.TotalHours / 24 / 365)} years";
    }

    public static string Ago(DateTimeOffset? t, DateTimeOffset now) => t is null ? "N/A" : Duration(now - t.Value) + " ago";

    public static string ShortId(string digest)
    {
        string hex = digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..] : digest;
        return hex.Length > 12 ? hex[..12] : hex;
    }

    /// <summary>RFC 3339 with nanoseconds, as docker events prints times.</summary>
    public static string UnixNanos(long nanos)
    {
        var t = DateTime.UnixEpoch.AddTicks(nanos / 100);
        return t.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture) + "." + (nanos % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture) + "Z";
    }
}

/// <summary>Columns padded like docker's tabwriter (min width 10, padding 3), last column unpadded.</summary>
internal sealed class Table(params string[] headers)
{
    private readonly List<string[]> _rows = [headers];

    public void Add(params string[] cells) => _rows.Add(cells);

    public override string ToString()
    {
        int cols = _rows.Max(r => r.Length);
        var widths = new int[cols];
        foreach (string[] r in _rows)
            for (int i = 0; i < r.Length; i++) widths[i] = Math.Max(widths[i], Math.Max(r[i].Length + 3, 10));
        var sb = new StringBuilder();
        foreach (string[] r in _rows)
        {
            for (int i = 0; i < r.Length; i++)
                sb.Append(i == r.Length - 1 ? r[i] : r[i].PadRight(widths[i]));
            sb.Append('\n');
        }
        return sb.ToString();
    }
}

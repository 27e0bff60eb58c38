using System.Globalization;
using System.Text.RegularExpressions;
using Vessel.Api;
using Vessel.Images.Oci;

namespace Vessel.Engine.Containers;

/// <summary>A container's effective health check: the request's --health-* over the image's HEALTHCHECK over
/// docker's defaults (interval 30s, timeout 30s, start period 0, retries 3).</summary>
public sealed partial record HealthSettings(List<string> Test, TimeSpan Interval, TimeSpan Timeout, TimeSpan StartPeriod, int Retries)
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(30), DefaultTimeout = TimeSpan.FromSeconds(30);
    public const int DefaultRetries = 3;

    /// <summary>The check to run, or null: none configured, or disabled (--no-healthcheck, NONE).</summary>
    public static HealthSettings? Resolve(ContainerHealthConfig? req, HealthConfig? image)
    {
        var test = req?.Test is { Count: > 0 } t ? t : image?.Test?.ToList();
        if (test is null or { Count: 0 } || test[0] == "NONE") return null;
        if (test[0] is not ("CMD" or "CMD-SHELL")) throw EngineException.Invalid($"invalid health check test \"{test[0]}\": use CMD, CMD-SHELL or NONE");
        if (test.Count < 2 || (test[0] == "CMD-SHELL" && string.IsNullOrWhiteSpace(test[1]))) throw EngineException.Invalid("the health check has no command");
        TimeSpan Pick(string? given, long? imageNs, TimeSpan dflt, string what)
        {
            var d = given is { Length: > 0 } g ? ParseDuration(g, what) : imageNs is > 0 ? TimeSpan.FromTicks(imageNs.Value / 100) : TimeSpan.Zero;
            if (d != TimeSpan.Zero && d < TimeSpan.FromMilliseconds(1)) throw EngineException.Invalid($"{what} in the health check cannot be less than 1ms");
            return d == TimeSpan.Zero ? dflt : d;
        }
        int retries = req?.Retries ?? image?.Retries ?? 0;
        if (retries < 0) throw EngineException.Invalid("--health-retries cannot be negative");
        return new HealthSettings(test,
            Pick(req?.Interval, image?.Interval, DefaultInterval, "--health-interval"),
            Pick(req?.Timeout, image?.Timeout, DefaultTimeout, "--health-timeout"),
            Pick(req?.StartPeriod, image?.StartPeriod, TimeSpan.Zero, "--health-start-period"),
            retries == 0 ? DefaultRetries : retries);
    }

    /// <summary>The process a probe runs: CMD args as they are, CMD-SHELL through /bin/sh -c.</summary>
    public List<string> Command => Test[0] == "CMD-SHELL" ? ["/bin/sh", "-c", Test[1]] : Test.Skip(1).ToList();

    [GeneratedRegex(@"^(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$")]
    private static partial Regex DurationPattern();

    /// <summary>A Go duration ("1m30s", "500ms", "2h", "1.5s", "100ns", "0"), as docker's flags take them.</summary>
    public static TimeSpan ParseDuration(string s, string what = "duration")
    {
        if (s == "0") return TimeSpan.Zero;
        var m = DurationPattern().Match(s);
        if (!m.Success) throw EngineException.Invalid($"invalid {what} \"{s}\": expected a duration like 30s, 1m30s or 500ms");
        double ticks = 0;
        for (int i = 0; i < m.Groups[1].Captures.Count; i++)
        {
            double n = double.Parse(m.Groups[1].Captures[i].Value, CultureInfo.InvariantCulture);
            ticks += n * m.Groups[2].Captures[i].Value switch
            {
                "ns" => 0.01, "us" or "µs" => 10, "ms" => TimeSpan.TicksPerMillisecond, "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute, _ => TimeSpan.TicksPerHour,
            };
        }
        return TimeSpan.FromTicks((long)Math.Round(ticks));
    }
}

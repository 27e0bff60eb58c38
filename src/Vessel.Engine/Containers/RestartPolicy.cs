namespace Vessel.Engine.Containers;

/// <summary>docker's restart policies: no, on-failure[:N], always, unless-stopped; and the decision the daemon takes
/// when a container's init ends (moby's restartmanager).</summary>
public sealed record RestartPolicy(string Name, int MaxRetries)
{
    public static readonly RestartPolicy No = new("no", 0);

    /// <summary>First wait before a restart; doubled each time up to <see cref="MaxBackoff"/>; back to the first
    /// after a run of at least <see cref="ResetAfter"/>.</summary>
    public static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan ResetAfter = TimeSpan.FromSeconds(10);

    public bool IsNo => Name == "no";

    public override string ToString() => Name == "on-failure" && MaxRetries > 0 ? $"on-failure:{MaxRetries}" : Name;

    public static RestartPolicy Parse(string? s)
    {
        if (string.IsNullOrEmpty(s)) return No;
        int colon = s.IndexOf(':');
        string name = colon < 0 ? s : s[..colon];
        int max = 0;
        if (colon >= 0)
        {
            string n = s[(colon + 1)..];
            if (name != "on-failure") throw EngineException.Invalid($"invalid restart policy \"{s}\": maximum retry count can only be used with 'on-failure'");
            if (!int.TryParse(n, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out max))
                throw EngineException.Invalid($"invalid restart policy \"{s}\": maximum retry count must be a non-negative integer");
        }
        return name switch
        {
            "no" or "always" or "unless-stopped" or "on-failure" => new RestartPolicy(name, max),
            _ => throw EngineException.Invalid($"invalid restart policy \"{s}\": use no, on-failure[:max-retries], always or unless-stopped"),
        };
    }

    /// <summary>Whether an init that ended with <paramref name="exitCode"/> should be started again.</summary>
    public bool ShouldRestart(int exitCode, bool stoppedByUser, int restartCount) => Name switch
    {
        "always" => !stoppedByUser,
        "unless-stopped" => !stoppedByUser,
        "on-failure" => !stoppedByUser && exitCode != 0 && (MaxRetries == 0 || restartCount < MaxRetries),
        _ => false,
    };

    /// <summary>At daemon start, for a container that is not running (moby restores so): always even if a user stopped
    /// it, unless-stopped only if no user did, on-failure after a failure with retries left.</summary>
    public bool RestartAtDaemonStart(int exitCode, bool stoppedByUser, int restartCount) => Name switch
    {
        "always" => true,
        _ => ShouldRestart(exitCode, stoppedByUser, restartCount),
    };

    /// <summary>The next back-off: <paramref name="previous"/> doubled (the first after a long run).</summary>
    public static TimeSpan NextBackoff(TimeSpan previous, TimeSpan ranFor)
    {
        if (ranFor >= ResetAfter || previous <= TimeSpan.Zero) return FirstBackoff;
        var next = previous * 2;
        return next > MaxBackoff ? MaxBackoff : next;
    }
}

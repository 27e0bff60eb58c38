namespace Vessel.Runtime.Plan;

/// <summary>Linux capability names (CAP_CHOWN …) and their bit numbers.</summary>
public static class Capabilities
{
    public static readonly string[] Names =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
        "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap).</summary>
    public static int LastCap { get; } = ReadLastCap();

    private static int ReadLastCap()
    {
        try { return int.Parse(File.ReadAllText("/proc/sys/kernel/cap_last_cap").Trim()); }
        catch (IOException) { return Names.Length - 1; }
    }

    public static int? Number(string name)
    {
        var i = Array.IndexOf(Names, name.ToUpperInvariant());
        return i < 0 ? null : i;
    }

    /// <summary>The bit mask of <paramref name="names"/>. A name that is no capability at all is an error
    /// (the spec: a value that cannot be mapped to the kernel MUST fail); a real capability this kernel
    /// predates is reported through <paramref name="tooNew"/> and left out, so a config written for a
    /// newer kernel still runs (runc's behaviour).</summary>
    public static ulong Mask(IEnumerable<string>? names, string field, Action<string>? tooNew = null)
    {
        ulong mask = 0;
        foreach (var (name, i) in (names ?? []).Select((n, i) => (n, i)))
        {
            var n = Number(name) ?? throw new Spec.SpecException($"{field}[{i}]", $"\"{name}\" is not a Linux capability");
            if (n > LastCap) { tooNew?.Invoke(name); continue; }
            mask |= 1UL << n;
        }
        return mask;
    }

    public static ulong All => LastCap >= 63 ? ulong.MaxValue : (1UL << (LastCap + 1)) - 1;

    public static IEnumerable<string> ToNames(ulong mask)
    {
        for (var i = 0; i < Names.Length; i++)
            if ((mask & (1UL << i)) != 0) yield return Names[i];
    }
}

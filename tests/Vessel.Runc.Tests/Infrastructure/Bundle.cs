using System.Text.Json;
using System.Text.Json.Nodes;

namespace Vessel.Runc.Tests.Infrastructure;

/// <summary>An OCI bundle in its own /tmp/vessel-test-* dir: a copy of the shared busybox rootfs and runc's
/// default config, edited as JSON per test (terminal off, linux.cgroupsPath = /vessel-test/ID).
/// Saved to config.json by <see cref="Save"/> (the ContainerTest helpers save before every command).</summary>
public sealed class Bundle
{
    public string Id { get; }
    public string Dir { get; }
    public string Rootfs => Path.Combine(Dir, "rootfs");
    public string ConfigPath => Path.Combine(Dir, "config.json");
    public JsonObject Config { get; }

    public Bundle(TestEnvironment env, string id, string dir)
    {
        Id = id;
        Dir = dir;
        var copy = Exec.Run("cp", ["-a", env.RootfsDir, Rootfs], TimeSpan.FromSeconds(60));
        if (copy.ExitCode != 0) throw new InvalidOperationException($"cp -a rootfs: {copy.Stderr}");
        Config = JsonNode.Parse(env.DefaultSpecJson)!.AsObject();
        Process["terminal"] = false;
        Linux["cgroupsPath"] = $"/{HostCgroups.Parent}/{id}";
    }

    public JsonObject Process => Config["process"]!.AsObject();
    public JsonObject Linux => Config["linux"]!.AsObject();

    public Bundle Args(params string[] args)
    {
        Process["args"] = new JsonArray(args.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray());
        return this;
    }

    /// <summary>`sh -c SCRIPT`.</summary>
    public Bundle Shell(string script) => Args("sh", "-c", script);

    public Bundle Writable()
    {
        Config["root"]!["readonly"] = false;
        return this;
    }

    public Bundle AddMount(string destination, string type, string source, params string[] options)
    {
        var mount = new JsonObject { ["destination"] = destination, ["type"] = type, ["source"] = source };
        if (options.Length > 0) mount["options"] = Strings(options);
        Config["mounts"]!.AsArray().Add(mount);
        return this;
    }

    public Bundle Resources(JsonObject resources)
    {
        Linux["resources"] = resources;
        return this;
    }

    /// <summary>Every capability this (test) process has, in every set: a "privileged" process. Raising one
    /// the caller lacks fails with EPERM, as it must (sandboxes often drop e.g. CAP_SYS_RESOURCE).</summary>
    public Bundle AllCapabilities()
    {
        var all = Capabilities.OfThisProcess();
        var caps = new JsonObject();
        foreach (var set in new[] { "bounding", "effective", "permitted", "inheritable", "ambient" }) caps[set] = Strings(all);
        Process["capabilities"] = caps;
        return this;
    }

    public static JsonArray Strings(IEnumerable<string> items) => new(items.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray());

    public Bundle Save()
    {
        File.WriteAllText(ConfigPath, Config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return this;
    }
}

/// <summary>Capability names and bits (linux/capability.h), up to CAP_CHECKPOINT_RESTORE.</summary>
public static class Capabilities
{
    public static readonly string[] Names =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
        "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>The names in this process's bounding set.</summary>
    public static string[] OfThisProcess()
    {
        var line = File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("CapBnd:", StringComparison.Ordinal));
        var mask = ulong.Parse(line["CapBnd:".Length..].Trim(), System.Globalization.NumberStyles.HexNumber);
        return Names.Where((_, bit) => (mask & 1UL << bit) != 0).ToArray();
    }

    public static ulong Mask(IEnumerable<string> names) => names.Aggregate(0UL, (m, n) => m | 1UL << Array.IndexOf(Names, n));
}

using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Cgroups;
using Vessel.Runtime.Spec;
using Vessel.Runtime.State;

namespace Vessel.Runc;

/// <summary>One method per runc command: parse its flags, call <see cref="ContainerRuntime"/>, print
/// what runc prints.</summary>
public static class Commands
{
    private static readonly Flag[] CreateFlags =
    [
        Flag.Value("bundle", "b"), Flag.Value("console-socket"), Flag.Value("pid-file"), Flag.Bool("no-pivot"),
        Flag.Bool("no-new-keyring"), Flag.Value("preserve-fds"), Flag.Value("pidfd-socket"),
    ];

    private static readonly Flag[] RunFlags = [.. CreateFlags, Flag.Bool("detach", "d"), Flag.Bool("keep"), Flag.Bool("no-subreaper")];

    private static readonly Flag[] ExecFlags =
    [
        Flag.Value("console-socket"), Flag.Value("pidfd-socket"), Flag.Value("cwd"), Flag.List("env", "e"), Flag.Bool("tty", "t"),
        Flag.Value("user", "u"), Flag.List("additional-gids", "g"), Flag.Value("process", "p"), Flag.Bool("detach", "d"),
        Flag.Value("pid-file"), Flag.Value("process-label"), Flag.Value("apparmor"), Flag.Bool("no-new-privs"),
        Flag.List("cap", "c"), Flag.Value("preserve-fds"), Flag.Value("cgroup"), Flag.Bool("ignore-paused"), Flag.Bool("no-subreaper"),
    ];

    private static readonly Flag[] UpdateFlags =
    [
        Flag.Value("resources", "r"), Flag.Value("memory"), Flag.Value("memory-swap"), Flag.Value("memory-reservation"),
        Flag.Value("kernel-memory"), Flag.Value("kernel-memory-tcp"), Flag.Value("cpu-shares"), Flag.Value("cpu-period"),
        Flag.Value("cpu-quota"), Flag.Value("cpu-burst"), Flag.Value("cpu-rt-period"), Flag.Value("cpu-rt-runtime"), Flag.Value("cpuset-cpus"),
        Flag.Value("cpuset-mems"), Flag.Value("pids-limit"), Flag.Value("blkio-weight"), Flag.Value("l3-cache-schema"),
        Flag.Value("mem-bw-schema"),
    ];

    public static int Run(string command, List<string> args, ContainerRuntime runtime, RuncLog log) => command switch
    {
        "spec" => Spec(args),
        "create" => Create(args, runtime),
        "start" => Start(args, runtime),
        "run" => RunContainer(args, runtime),
        "state" => State(args, runtime),
        "list" or "ls" => List(args, runtime),
        "kill" => Kill(args, runtime),
        "delete" or "rm" => Delete(args, runtime),
        "exec" => Exec(args, runtime),
        "ps" => Ps(args, runtime),
        "pause" => Pause(args, runtime, pause: true),
        "resume" => Pause(args, runtime, pause: false),
        "update" => Update(args, runtime),
        "events" => Events(args, runtime),
        "features" => Features(),
        "checkpoint" or "restore" => throw new RuntimeException($"{command} is not supported by vessel-runc (no CRIU integration)"),
        "help" => throw new UsageException("usage: vessel-runc --help"),
        _ => throw new UsageException($"No help topic for '{command}'"),
    };

    private static string RequireId(ParsedArgs p, string command, int extraAllowed = 0)
    {
        if (p.Positional.Count == 0) throw new UsageException($"\"{command}\" requires a container id");
        if (p.Positional.Count > 1 + extraAllowed) throw new UsageException($"\"{command}\" takes a container id, got: {string.Join(' ', p.Positional)}");
        return p.Positional[0];
    }

    private static int Spec(List<string> args)
    {
        var p = CommandLine.Parse(args, [Flag.Value("bundle", "b"), Flag.Bool("rootless")]);
        var dir = p.Value("bundle") ?? ".";
        var path = Path.Combine(dir, "config.json");
        if (File.Exists(path)) throw new RuntimeException("File config.json exists. Remove it first");
        File.WriteAllText(path, JsonSerializer.Serialize(DefaultSpec.Create(p.Bool("rootless")), RuntimeJson.Indented.RuntimeSpec) + "\n");
        return 0;
    }

    private static CreateOptions CreateOptionsOf(ParsedArgs p, string id, SafeFd? console) =>
        new(id, p.Value("bundle") ?? ".", p.Value("pid-file"), p.Value("console-socket"), p.Bool("no-pivot"),
            PreservedFds(p), console);

    /// <summary>--preserve-fds N, plus LISTEN_FDS for socket activation as runc does.</summary>
    private static int PreservedFds(ParsedArgs p)
    {
        var n = p.Int("preserve-fds", 0);
        if (int.TryParse(Environment.GetEnvironmentVariable("LISTEN_FDS"), out var listen) && listen > 0) n += listen;
        return n;
    }

    private static int Create(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, CreateFlags);
        runtime.Create(CreateOptionsOf(p, RequireId(p, "create"), null));
        return 0;
    }

    private static int Start(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, []);
        runtime.Start(RequireId(p, "start"));
        return 0;
    }

    /// <summary>create + start + wait; exits with the container's status. The init is our child
    /// (the executor clones it with CLONE_PARENT), so we wait for it directly and forward signals.</summary>
    private static int RunContainer(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, RunFlags);
        var id = RequireId(p, "run");
        var detach = p.Bool("detach");
        var spec = RuntimeJson.ReadSpec(Path.Combine(p.Value("bundle") ?? ".", "config.json"));
        using var proxy = spec.Process?.Terminal == true && p.Value("console-socket") is null && !detach ? new ConsoleProxy() : null;
        var pid = runtime.Create(CreateOptionsOf(p, id, proxy?.Theirs));
        int status;
        try
        {
            proxy?.Start();
            runtime.Start(id);
            if (detach) return 0;
            using var forward = ForwardSignals(pid);
            status = Processes.WaitExit(pid);
        }
        catch when (!detach)
        {
            if (!p.Bool("keep")) TryDelete(runtime, id);
            throw;
        }
        proxy?.Dispose();
        if (!p.Bool("keep")) runtime.Delete(id, force: true);
        return status;
    }

    private static void TryDelete(ContainerRuntime runtime, string id)
    {
        try { runtime.Delete(id, force: true); }
        catch (RuntimeException) { }
    }

    /// <summary>Signals sent to us go to the container's process, as runc does in the foreground.</summary>
    private static IDisposable ForwardSignals(int pid)
    {
        var registrations = new List<PosixSignalRegistration>();
        foreach (var signal in new[] { 1, 2, 3, 10, 12, 15 }) // HUP INT QUIT USR1 USR2 TERM
        {
            registrations.Add(PosixSignalRegistration.Create((PosixSignal)signal, context =>
            {
                context.Cancel = true;
                Processes.Kill(pid, signal);
            }));
        }
        return new Registrations(registrations);
    }

    private sealed class Registrations(List<PosixSignalRegistration> items) : IDisposable
    {
        public void Dispose() => items.ForEach(r => r.Dispose());
    }

    private static int State(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, []);
        Console.WriteLine(JsonSerializer.Serialize(runtime.State(RequireId(p, "state")), RuntimeJson.Indented.ContainerState));
        return 0;
    }

    private static int List(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, [Flag.Value("format", "f"), Flag.Bool("quiet", "q")]);
        var all = runtime.List().ToList();
        if (p.Bool("quiet"))
        {
            foreach (var c in all) Console.WriteLine(c.Id);
            return 0;
        }
        switch (p.Value("format") ?? "table")
        {
            case "json":
                Console.WriteLine(JsonSerializer.Serialize(all, RuntimeJson.Default.ListContainerState));
                break;
            case "table":
                var rows = all.Select(c => new[] { c.Id, c.Pid.ToString(), c.Status, c.Bundle, c.Created.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'"), c.Owner }).ToList();
                PrintTable(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], rows);
                break;
            default:
                throw new UsageException($"invalid format option \"{p.Value("format")}\": use table or json");
        }
        return 0;
    }

    private static void PrintTable(string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        string Line(string[] cells) => string.Join("   ", cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(widths[i])));
        Console.WriteLine(Line(header));
        foreach (var r in rows) Console.WriteLine(Line(r));
    }

    private static int Kill(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, [Flag.Bool("all", "a")]);
        var id = RequireId(p, "kill", extraAllowed: 1);
        var signalText = p.Positional.Count > 1 ? p.Positional[1] : "SIGTERM";
        if (!Signals.TryParse(signalText, out var signal)) throw new UsageException($"unknown signal \"{signalText}\"");
        runtime.Kill(id, signal, p.Bool("all"));
        return 0;
    }

    private static int Delete(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, [Flag.Bool("force", "f")]);
        if (p.Positional.Count == 0) throw new UsageException("\"delete\" requires a container id");
        var failed = false;
        foreach (var id in p.Positional)
        {
            try
            {
                runtime.Delete(id, p.Bool("force"));
            }
            catch (RuntimeException) when (p.Positional.Count > 1)
            {
                failed = true;
            }
        }
        return failed ? 1 : 0;
    }

    private static int Exec(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, ExecFlags);
        if (p.Positional.Count == 0) throw new UsageException("\"exec\" requires a container id");
        var id = p.Positional[0];
        var config = runtime.Config(id);
        var process = p.Value("process") is { } file ? ReadProcess(file) : ProcessFromFlags(p, config);
        if (process.Args is not { Count: > 0 }) throw new UsageException("exec: give a command, or --process FILE");
        var detach = p.Bool("detach");
        if (detach && process.Terminal && p.Value("console-socket") is null)
            throw new RuntimeException("cannot allocate a tty for a detached exec without --console-socket");
        using var proxy = process.Terminal && p.Value("console-socket") is null ? new ConsoleProxy() : null;
        var pid = runtime.Exec(new ExecOptions(id, process, p.Value("pid-file"), p.Value("console-socket"), PreservedFds(p), proxy?.Theirs));
        if (detach) return 0;
        proxy?.Start();
        using var forward = ForwardSignals(pid);
        var status = Processes.WaitExit(pid);
        proxy?.Dispose();
        return status;
    }

    private static ProcessSpec ReadProcess(string file)
    {
        var text = file == "-" ? Console.In.ReadToEnd() : File.ReadAllText(file);
        return RuntimeJson.Parse(text, RuntimeJson.Default.ProcessSpec, "process.json") ?? throw new SpecException("process", "is null");
    }

    /// <summary>The container's process with the command and the flags given to exec in place of its own.</summary>
    private static ProcessSpec ProcessFromFlags(ParsedArgs p, RuntimeSpec config)
    {
        var json = JsonSerializer.Serialize(config.Process ?? new ProcessSpec(), RuntimeJson.Default.ProcessSpec);
        var process = JsonSerializer.Deserialize(json, RuntimeJson.Default.ProcessSpec)!;
        process.Args = p.Positional.Skip(1).ToList();
        process.Terminal = p.Bool("tty");
        process.ConsoleSize = null;
        var env = (process.Env ?? []).ToList();
        foreach (var e in p.Values("env"))
        {
            var key = e.Split('=')[0];
            env.RemoveAll(x => x.Split('=')[0] == key);
            env.Add(e);
        }
        process.Env = env;
        if (p.Value("cwd") is { } cwd) process.Cwd = cwd;
        if (p.Value("user") is { } user)
        {
            var parts = user.Split(':');
            if (!uint.TryParse(parts[0], out var uid) || (parts.Length > 1 && !uint.TryParse(parts[1], out _)))
                throw new UsageException($"--user {user}: give uid[:gid] as numbers");
            process.User = new UserSpec { Uid = uid, Gid = parts.Length > 1 ? uint.Parse(parts[1]) : 0 };
        }
        if (p.Values("additional-gids").Count > 0)
            process.User.AdditionalGids = p.Values("additional-gids").Select(g => uint.TryParse(g, out var n) ? n : throw new UsageException($"invalid gid {g}")).ToList();
        if (p.Bool("no-new-privs")) process.NoNewPrivileges = true;
        if (p.Value("apparmor") is { } apparmor) process.ApparmorProfile = apparmor;
        if (p.Values("cap").Count > 0)
        {
            var caps = process.Capabilities ??= new CapabilitiesSpec();
            foreach (var cap in p.Values("cap"))
            {
                foreach (var set in new[] { caps.Bounding ??= [], caps.Effective ??= [], caps.Permitted ??= [] })
                    if (!set.Contains(cap)) set.Add(cap);
            }
        }
        return process;
    }

    private static int Ps(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, [Flag.Value("format", "f")]);
        var id = RequireId(p, "ps", extraAllowed: int.MaxValue / 2);
        var pids = runtime.Pids(id);
        var format = p.Value("format") ?? "table";
        if (format == "json")
        {
            Console.WriteLine(JsonSerializer.Serialize(pids.ToList(), RuntimeJson.Default.ListInt32));
            return 0;
        }
        if (format != "table") throw new UsageException($"invalid format option \"{format}\": use table or json");
        var psArgs = p.Positional.Count > 1 ? p.Positional.Skip(1).ToList() : ["-ef"];
        var output = RunPs(psArgs);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0) return 0;
        var pidColumn = Array.IndexOf(lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries), "PID");
        if (pidColumn < 0) throw new RuntimeException("ps: the output has no PID column");
        Console.WriteLine(lines[0]);
        foreach (var line in lines.Skip(1))
        {
            var cells = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (cells.Length > pidColumn && int.TryParse(cells[pidColumn], out var pid) && pids.Contains(pid)) Console.WriteLine(line);
        }
        return 0;
    }

    private static string RunPs(List<string> args)
    {
        using var output = SafeFd.MemoryFile("ps", []);
        var ps = File.Exists("/bin/ps") ? "/bin/ps" : "/usr/bin/ps";
        var pid = Spawn.Start(ps, ["ps", .. args], ["PATH=/usr/bin:/bin", "COLUMNS=512"], new Dictionary<int, SafeFd> { [1] = output });
        var status = Processes.WaitExit(pid);
        using var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(output.DangerousGetHandle(), false), FileAccess.Read);
        stream.Position = 0;
        var text = new StreamReader(stream, Encoding.UTF8).ReadToEnd();
        if (status != 0) throw new RuntimeException($"ps {string.Join(' ', args)} failed with status {status}");
        return text;
    }

    private static int Pause(List<string> args, ContainerRuntime runtime, bool pause)
    {
        var p = CommandLine.Parse(args, []);
        var id = RequireId(p, pause ? "pause" : "resume");
        if (pause) runtime.Pause(id);
        else runtime.Resume(id);
        return 0;
    }

    private static int Update(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, UpdateFlags);
        var id = RequireId(p, "update");
        LinuxResources resources;
        if (p.Value("resources") is { } source)
        {
            var text = source == "-" ? Console.In.ReadToEnd() : File.ReadAllText(source);
            resources = RuntimeJson.Parse(text, RuntimeJson.Default.LinuxResources, "resources") ?? new LinuxResources();
        }
        else resources = runtime.Config(id).Linux?.Resources ?? new LinuxResources();
        if (p.Value("l3-cache-schema") is not null || p.Value("mem-bw-schema") is not null)
            throw new RuntimeException("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
        if (p.Value("kernel-memory") is not null || p.Value("kernel-memory-tcp") is not null)
            throw new RuntimeException("kernel memory limits are not supported (deprecated by the kernel)");
        var memory = resources.Memory ?? new LinuxMemory();
        var cpu = resources.Cpu ?? new LinuxCpu();
        if (p.Value("memory") is { } m) memory.Limit = Size(m, "memory");
        if (p.Value("memory-swap") is { } ms) memory.Swap = Size(ms, "memory-swap");
        if (p.Value("memory-reservation") is { } mr) memory.Reservation = Size(mr, "memory-reservation");
        if (p.Value("cpu-shares") is { } cs) cpu.Shares = ulong.Parse(cs);
        if (p.Value("cpu-period") is { } cper) cpu.Period = ulong.Parse(cper);
        if (p.Value("cpu-quota") is { } cq) cpu.Quota = long.Parse(cq);
        if (p.Value("cpu-burst") is { } cb) cpu.Burst = ulong.Parse(cb);
        if (p.Value("cpu-rt-period") is { } crp) cpu.RealtimePeriod = ulong.Parse(crp);
        if (p.Value("cpu-rt-runtime") is { } crr) cpu.RealtimeRuntime = long.Parse(crr);
        if (p.Value("cpuset-cpus") is { } cc) cpu.Cpus = cc;
        if (p.Value("cpuset-mems") is { } cm) cpu.Mems = cm;
        resources.Memory = memory;
        resources.Cpu = cpu;
        if (p.Value("pids-limit") is { } pl) resources.Pids = new LinuxPids { Limit = long.Parse(pl) };
        if (p.Value("blkio-weight") is { } bw) (resources.BlockIO ??= new LinuxBlockIo()).Weight = ushort.Parse(bw);
        runtime.Update(id, resources);
        return 0;
    }

    /// <summary>Sizes as runc takes them: bytes, or a number with a binary unit (k, m, g, t), -1 unlimited.</summary>
    internal static long Size(string text, string flag)
    {
        var t = text.Trim().ToLowerInvariant().TrimEnd('b').TrimEnd('i');
        if (t == "-1") return -1;
        long multiplier = 1;
        if (t.Length > 0 && "kmgtp".Contains(t[^1]))
        {
            multiplier = 1L << (10 * ("kmgtp".IndexOf(t[^1]) + 1));
            t = t[..^1];
        }
        return double.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 0
            ? (long)(n * multiplier)
            : throw new UsageException($"invalid value \"{text}\" for --{flag}");
    }

    private static int Events(List<string> args, ContainerRuntime runtime)
    {
        var p = CommandLine.Parse(args, [Flag.Bool("stats"), Flag.Value("interval")]);
        var id = RequireId(p, "events");
        if (p.Bool("stats"))
        {
            WriteEvent("stats", id, runtime.Stats(id));
            return 0;
        }
        var interval = ParseDuration(p.Value("interval") ?? "5s");
        ulong? oomKills = null;
        while (!runtime.IsStopped(id))
        {
            var stats = runtime.Stats(id);
            var kills = stats.Memory.OomKillCount;
            if (oomKills is not null && kills > oomKills) WriteEvent("oom", id, null);
            oomKills = kills;
            WriteEvent("stats", id, stats);
            Thread.Sleep(interval);
        }
        return 0;
    }

    private static void WriteEvent(string type, string id, CgroupStats? stats)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteString("id", id);
            if (stats is not null)
            {
                w.WritePropertyName("data");
                JsonSerializer.Serialize(w, stats, CgroupStatsJsonContext.Default.CgroupStats);
            }
            w.WriteEndObject();
        }
        Console.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static TimeSpan ParseDuration(string text)
    {
        var units = new (string Suffix, double Seconds)[] { ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600) };
        foreach (var (suffix, seconds) in units)
            if (text.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(text[..^suffix.Length], System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0)
                return TimeSpan.FromSeconds(n * seconds);
        throw new UsageException($"invalid duration \"{text}\" for --interval (e.g. 5s, 500ms)");
    }

    private static int Features()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("ociVersionMin", "1.0.0");
            w.WriteString("ociVersionMax", SpecVersion.Current);
            Strings(w, "hooks", "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop");
            Strings(w, "mountOptions", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
                "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime",
                "nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
                "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable");
            w.WriteStartObject("linux");
            Strings(w, "namespaces", "cgroup", "ipc", "mount", "network", "pid", "user", "uts");
            Strings(w, "capabilities", [.. Vessel.Runtime.Plan.Capabilities.Names.Take(Vessel.Runtime.Plan.Capabilities.LastCap + 1)]);
            w.WriteStartObject("cgroup");
            w.WriteBoolean("v1", true);
            w.WriteBoolean("v2", true);
            w.WriteBoolean("systemd", false);
            w.WriteBoolean("systemdUser", false);
            w.WriteBoolean("rdma", false);
            w.WriteEndObject();
            w.WriteStartObject("seccomp");
            w.WriteBoolean("enabled", true);
            Strings(w, "actions", "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP");
            Strings(w, "operators", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE");
            Strings(w, "archs", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32");
            Strings(w, "knownFlags", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW");
            Strings(w, "supportedFlags", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW");
            w.WriteEndObject();
            w.WriteStartObject("apparmor");
            w.WriteBoolean("enabled", false);
            w.WriteEndObject();
            w.WriteStartObject("selinux");
            w.WriteBoolean("enabled", false);
            w.WriteEndObject();
            w.WriteStartObject("intelRdt");
            w.WriteBoolean("enabled", false);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("annotations");
            w.WriteString("org.opencontainers.runtime-spec.features.vessel.version", Program.Version);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        Console.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        return 0;
    }

    private static void Strings(Utf8JsonWriter w, string name, params string[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}

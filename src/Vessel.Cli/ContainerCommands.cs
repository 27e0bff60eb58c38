using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>The container verbs: run, create, start, stop, kill, rm, ps, logs, wait, inspect, exec (streams: InteractiveCommands.cs).</summary>
internal sealed partial class Commands
{
    private void AddContainerCommands(RootCommand root)
    {
        root.Subcommands.Add(Run());
        root.Subcommands.Add(CreateCmd());
        root.Subcommands.Add(StartCmd());
        root.Subcommands.Add(StopCmd());
        root.Subcommands.Add(KillCmd());
        root.Subcommands.Add(RmCmd());
        root.Subcommands.Add(Ps());
        root.Subcommands.Add(LogsCmd());
        root.Subcommands.Add(WaitCmd());
        root.Subcommands.Add(InspectContainer());
        root.Subcommands.Add(ExecCmd());
        root.Subcommands.Add(AttachCmd());
        root.Subcommands.Add(RestartCmd());
        root.Subcommands.Add(VolumeGroup());
        AddContainerVerbCommands(root);
    }

    /// <summary>Flags of run/create/exec that take a value: to find where IMAGE (or CONTAINER) is, after which every
    /// word belongs to the command (so `vessel run img sh -c 'x'` passes -c on).</summary>
    private static readonly HashSet<string> ValueFlags =
    [
        "-H", "--host", "--name", "-e", "--env", "-w", "--workdir", "--entrypoint", "--hostname", "-m", "--memory", "--pids-limit",
        "--cpus", "--cap-add", "--cap-drop", "-l", "--label", "-u", "--user", "--detach-keys",
        "--network", "--net", "--ip", "--network-alias", "--net-alias", "-p", "--publish",
    ];

    private static bool IsValueFlag(string a) => ValueFlags.Contains(a) || FeatureValueFlags.Contains(a) || RunValueFlags.Contains(a);

    /// <summary>Inserts "--" after the first positional word following run/create/exec.</summary>
    public static string[] SeparateCommand(string[] args)
    {
        int i = 0;
        while (i < args.Length && args[i].StartsWith('-')) i += IsValueFlag(args[i]) && !args[i].Contains('=') ? 2 : 1;
        if (i + 1 < args.Length && args[i] == "container") i++; // vessel container run …
        if (i >= args.Length || args[i] is not ("run" or "create" or "exec" or "top")) return args;
        for (i++; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--") return args;
            if (!a.StartsWith('-') || a == "-") break;
            if (IsValueFlag(a)) i++;
        }
        if (i >= args.Length - 1) return args;
        return [.. args[..(i + 1)], "--", .. args[(i + 1)..]];
    }

    private sealed class CreateFlags
    {
        public readonly Option<string?> Name = new("--name") { Description = "Assign a name to the container" };
        public readonly Option<string[]> Env = new("--env", "-e") { Description = "Set environment variables", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string?> Workdir = new("--workdir", "-w") { Description = "Working directory inside the container" };
        public readonly Option<string?> Entrypoint = new("--entrypoint") { Description = "Overwrite the default ENTRYPOINT of the image" };
        public readonly Option<string?> Hostname = new("--hostname") { Description = "Container host name" };
        public readonly Option<string?> User = new("--user", "-u") { Description = "Username or UID (format: <name|uid>[:<group|gid>])" };
        public readonly Option<string?> Memory = new("--memory", "-m") { Description = "Memory limit (e.g. 64m)" };
        public readonly Option<long?> Pids = new("--pids-limit") { Description = "Tune container pids limit" };
        public readonly Option<double?> Cpus = new("--cpus") { Description = "Number of CPUs" };
        public readonly Option<bool> ReadOnly = new("--read-only") { Description = "Mount the container's root filesystem as read only" };
        public readonly Option<string[]> CapAdd = new("--cap-add") { Description = "Add Linux capabilities", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string[]> CapDrop = new("--cap-drop") { Description = "Drop Linux capabilities", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<bool> Privileged = new("--privileged") { Description = "Give extended privileges to this container" };
        public readonly Option<string[]> Labels = new("--label", "-l") { Description = "Set meta data on a container", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<bool> Interactive = new("--interactive", "-i") { Description = "Keep STDIN open even if not attached" };
        public readonly Option<bool> Tty = new("--tty", "-t") { Description = "Allocate a pseudo-TTY" };
        public readonly Option<string?> Network = new("--network", "--net") { Description = "Connect a container to a network (bridge, NAME, none, host, container:NAME)" };
        public readonly Option<string?> Ip = new("--ip") { Description = "IPv4 address (e.g., 172.30.100.104)" };
        public readonly Option<string[]> Aliases = new("--network-alias", "--net-alias") { Description = "Add network-scoped alias for the container", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string[]> Publish = new("--publish", "-p") { Description = "Publish a container's port(s) to the host ([IP:][HOST:]CONTAINER[/udp])", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<bool> PublishAll = new("--publish-all", "-P") { Description = "Publish all exposed ports to random ports" };
        public readonly FeatureFlags Features = new();
        public readonly RunFlags More = new();
        public readonly Argument<string> Image = new("IMAGE");
        public readonly Argument<string[]> Cmd = new("COMMAND") { Arity = ArgumentArity.ZeroOrMore };

        public void AddTo(Command cmd)
        {
            foreach (Option o in new Option[] { Name, Env, Workdir, Entrypoint, Hostname, User, Memory, Pids, Cpus, ReadOnly, CapAdd, CapDrop, Privileged, Labels, Network, Ip, Aliases, Publish, PublishAll, Interactive, Tty })
                cmd.Options.Add(o);
            Features.AddTo(cmd);
            More.AddTo(cmd);
            cmd.Arguments.Add(Image);
            cmd.Arguments.Add(Cmd);
        }

        /// <param name="attached">stdin will be attached (run without -d, create): docker's StdinOnce with -i.</param>
        public ContainerCreateRequest Request(ParseResult pr, bool autoRemove, bool attached = true)
        {
            string[] cmd = pr.GetValue(Cmd) ?? [];
            string? ep = pr.GetValue(Entrypoint);
            var labels = new Dictionary<string, string>();
            foreach (string l in pr.GetValue(Labels) ?? [])
            {
                int eq = l.IndexOf('=');
                labels[eq < 0 ? l : l[..eq]] = eq < 0 ? "" : l[(eq + 1)..];
            }
            return More.Apply(pr, Features.Apply(pr, new ContainerCreateRequest
            {
                Image = pr.GetValue(Image)!, Name = pr.GetValue(Name), Cmd = cmd.Length > 0 ? [.. cmd] : null,
                Entrypoint = ep is null ? null : ep.Length == 0 ? [] : [ep],
                Env = pr.GetValue(Env) is { Length: > 0 } env ? env.Select(ExpandEnv).OfType<string>().ToList() : null,
                WorkingDir = pr.GetValue(Workdir), Hostname = pr.GetValue(Hostname), User = pr.GetValue(User),
                Memory = pr.GetValue(Memory) is { } m ? ParseBytes(m) : null, PidsLimit = pr.GetValue(Pids), Cpus = pr.GetValue(Cpus),
                ReadOnly = pr.GetValue(ReadOnly), CapAdd = pr.GetValue(CapAdd) is { Length: > 0 } ca ? [.. ca] : null,
                CapDrop = pr.GetValue(CapDrop) is { Length: > 0 } cd ? [.. cd] : null, Privileged = pr.GetValue(Privileged),
                Labels = labels.Count > 0 ? labels : null, AutoRemove = autoRemove,
                Tty = pr.GetValue(Tty), OpenStdin = pr.GetValue(Interactive), StdinOnce = pr.GetValue(Interactive) && attached,
                NetworkMode = pr.GetValue(Network), Ip = pr.GetValue(Ip), NetworkAliases = pr.GetValue(Aliases) is { Length: > 0 } na ? [.. na] : null,
                Publish = pr.GetValue(Publish) is { Length: > 0 } pp ? [.. pp] : null, PublishAll = pr.GetValue(PublishAll),
            }));
        }

        /// <summary>docker: `-e KEY` takes KEY's value from the client's environment (dropped if unset).</summary>
        private static string? ExpandEnv(string e) =>
            e.Contains('=') ? e : Environment.GetEnvironmentVariable(e) is { } v ? $"{e}={v}" : null;
    }

    public static long ParseBytes(string s)
    {
        s = s.Trim().ToLowerInvariant();
        if (s.EndsWith('b')) s = s[..^1];
        long mult = s.Length == 0 ? 1 : s[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, 't' => 1L << 40, _ => 1 };
        if (mult != 1) s = s[..^1];
        return double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) && v >= 0
            ? (long)(v * mult) : throw new CliException($"invalid size: '{s}'");
    }

    private static async Task<ContainerCreateResponse> CreateContainer(Client c, ContainerCreateRequest req, CancellationToken ct)
    {
        ContainerCreateResponse r = await c.Send(HttpMethod.Post, "v1/containers", Client.Json(req, ContainerJson.Default.ContainerCreateRequest),
            ContainerJson.Default.ContainerCreateResponse, ct);
        foreach (string w in r.Warnings) Console.Error.WriteLine($"WARNING: {w}");
        return r;
    }

    private static string Esc(string id) => Uri.EscapeDataString(id);

    /// <summary>Starts; a command that cannot be found or run exits 127/126 as with docker.</summary>
    private static async Task StartContainer(Client c, string id, CancellationToken ct)
    {
        try
        {
            await c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/start", null, ct);
        }
        catch (CliException e)
        {
            int code = CliException.Failure;
            try
            {
                ContainerInspect i = await c.Get($"v1/containers/{Esc(id)}", ContainerJson.Default.ContainerInspect, ct);
                if (i.State.ExitCode is 126 or 127) code = i.State.ExitCode.Value;
            }
            catch (CliException) { }
            throw new CliException(e.Message, code);
        }
    }

    private Command Run()
    {
        var flags = new CreateFlags();
        var detach = new Option<bool>("--detach", "-d") { Description = "Run container in background and print container ID" };
        var rm = new Option<bool>("--rm") { Description = "Automatically remove the container when it exits" };
        var keys = DetachKeysOption();
        var sigProxy = SigProxyOption();
        var cmd = new Command("run", "Create and run a new container from an image") { detach, rm, keys, sigProxy };
        flags.AddTo(cmd);
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            bool d = pr.GetValue(detach), autoRemove = pr.GetValue(rm), stdin = pr.GetValue(flags.Interactive), tty = pr.GetValue(flags.Tty);
            if (!d) CheckTty(stdin, tty);
            CheckRestartWithRm(flags.Request(pr, false), autoRemove);
            // The daemon removes (AutoRemove): in the foreground once the attach has the exit code and before it ends,
            // so the container is gone when we return; after a detach, when the container exits.
            ContainerCreateResponse created = await CreateContainer(c, flags.Request(pr, autoRemove, attached: !d), ct);
            if (d)
            {
                try
                {
                    await StartContainer(c, created.Id, ct);
                }
                catch (CliException)
                {
                    if (autoRemove) await RemoveQuietly(c, created.Id);
                    throw;
                }
                Console.Out.WriteLine(created.Id);
                return 0;
            }
            int code;
            try
            {
                (code, _) = await AttachAndRun(c, created.Id, stdin, tty, pr.GetValue(keys), start: true, pr.GetValue(sigProxy), ct);
            }
            catch (CliException)
            {
                if (autoRemove) await RemoveQuietly(c, created.Id);
                throw;
            }
            return code;
        });
        return cmd;
    }

    private static async Task RemoveQuietly(Client c, string id)
    {
        try { await c.SendNoContent(HttpMethod.Delete, $"v1/containers/{id}?force=true&v=true", null, CancellationToken.None); }
        catch (CliException) { }
    }

    private Command CreateCmd()
    {
        var flags = new CreateFlags();
        var cmd = new Command("create", "Create a new container");
        flags.AddTo(cmd);
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            Console.Out.WriteLine((await CreateContainer(c, flags.Request(pr, false), ct)).Id);
            return 0;
        });
        return cmd;
    }

    private Command EachContainer(string name, string description, Func<Client, ParseResult, string, CancellationToken, Task> action, params Option[] options) =>
        EachName(name, description, "CONTAINER", action, options);

    /// <summary>A verb over one or more containers, volumes or networks, printing each name as docker does; the last
    /// failure is the result, the earlier ones are printed.</summary>
    private Command EachName(string name, string description, string argument, Func<Client, ParseResult, string, CancellationToken, Task> action, params Option[] options)
    {
        var ids = new Argument<string[]>(argument) { Arity = ArgumentArity.OneOrMore };
        var cmd = new Command(name, description) { ids };
        foreach (Option o in options) cmd.Options.Add(o);
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            await ForEachName(pr.GetValue(ids)!, async id =>
            {
                await action(c, pr, id, ct);
                Console.Out.WriteLine(id);
            });
            return 0;
        });
        return cmd;
    }

    /// <summary>Runs <paramref name="each"/> for every name as docker does: a failure is printed and the next name is
    /// tried; the last failure becomes the command's error.</summary>
    private static async Task ForEachName(IEnumerable<string> names, Func<string, Task> each)
    {
        CliException? last = null;
        foreach (string n in names)
        {
            try { await each(n); }
            catch (CliException e)
            {
                if (last is not null) Console.Error.WriteLine($"vessel: {last.Message}");
                last = e;
            }
        }
        if (last is not null) throw last;
    }

    private Command StartCmd()
    {
        var attach = new Option<bool>("--attach", "-a") { Description = "Attach STDOUT/STDERR and forward signals" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "Attach container's STDIN" };
        var keys = DetachKeysOption();
        Command cmd = EachContainer("start", "Start one or more stopped containers", (c, pr, id, ct) => StartContainer(c, id, ct), attach, interactive, keys);
        System.CommandLine.Invocation.CommandLineAction? plain = cmd.Action; // start without -a: each container in turn
        cmd.SetAction(async (pr, ct) =>
        {
            if (!pr.GetValue(attach) && !pr.GetValue(interactive))
                return plain is System.CommandLine.Invocation.AsynchronousCommandLineAction a ? await a.InvokeAsync(pr, ct) : 0;
            string[] ids = pr.GetValue<string[]>("CONTAINER") ?? [];
            if (ids.Length != 1) throw new CliException("you cannot start and attach multiple containers at once");
            using Client c = Connect(pr);
            return await StartAttached(c, ids[0], pr.GetValue(interactive), pr.GetValue(keys), ct);
        });
        return cmd;
    }

    private Command StopCmd()
    {
        var time = new Option<int?>("--time", "-t") { Description = "Seconds to wait before killing the container (default: its --stop-timeout, else 10)" };
        var signal = new Option<string?>("--signal", "-s") { Description = "Signal to send to the container (default: its stop signal)" };
        return EachContainer("stop", "Stop one or more running containers",
            (c, pr, id, ct) => c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/stop{StopQuery(pr, time, signal)}", null, ct), time, signal);
    }

    /// <summary>stop's and restart's -t and -s as a query string ("" when neither is given).</summary>
    private static string StopQuery(ParseResult pr, Option<int?> time, Option<string?> signal)
    {
        var q = new List<string>();
        if (pr.GetValue(time) is int t) q.Add($"t={t}");
        if (pr.GetValue(signal) is { Length: > 0 } s) q.Add("signal=" + Uri.EscapeDataString(s));
        return q.Count > 0 ? "?" + string.Join('&', q) : "";
    }

    private Command KillCmd()
    {
        var signal = new Option<string?>("--signal", "-s") { Description = "Signal to send to the container (default KILL)" };
        return EachContainer("kill", "Kill one or more running containers",
            (c, pr, id, ct) => c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/kill?signal={Uri.EscapeDataString(pr.GetValue(signal) ?? "KILL")}", null, ct), signal);
    }

    private Command RmCmd(string name = "rm")
    {
        var force = new Option<bool>("--force", "-f") { Description = "Force the removal of a running container (uses SIGKILL)" };
        var volumes = new Option<bool>("--volumes", "-v") { Description = "Remove anonymous volumes associated with the container" };
        return EachContainer(name, "Remove one or more containers",
            (c, pr, id, ct) => c.SendNoContent(HttpMethod.Delete, $"v1/containers/{Esc(id)}?force={(pr.GetValue(force) ? "true" : "false")}&v={(pr.GetValue(volumes) ? "true" : "false")}", null, ct), force, volumes);
    }

    private Command WaitCmd()
    {
        var ids = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("wait", "Block until one or more containers stop, then print their exit codes") { ids };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            foreach (string id in pr.GetValue(ids)!)
                Console.Out.WriteLine((await c.Send(HttpMethod.Post, $"v1/containers/{Esc(id)}/wait", null, ContainerJson.Default.ContainerWaitResponse, ct)).ExitCode);
            return 0;
        });
        return cmd;
    }

    private static string StatusText(ContainerStateInfo s, DateTimeOffset now) => s.Status switch
    {
        ContainerStatus.Running => "Up " + Human.Duration(now - (s.StartedAt ?? now)) + HealthSuffix(s.Health),
        ContainerStatus.Paused => "Up " + Human.Duration(now - (s.StartedAt ?? now)) + " (Paused)",
        ContainerStatus.Exited => $"Exited ({s.ExitCode}) {Human.Ago(s.FinishedAt, now)}",
        ContainerStatus.Restarting => $"Restarting ({s.ExitCode}) {Human.Ago(s.FinishedAt, now)}",
        _ => "Created",
    };

    private Command LogsCmd()
    {
        var follow = new Option<bool>("--follow", "-f") { Description = "Follow log output" };
        var tail = new Option<string?>("--tail", "-n") { Description = "Number of lines to show from the end of the logs (default all)" };
        var timestamps = new Option<bool>("--timestamps", "-t") { Description = "Show timestamps" };
        var since = new Option<string?>("--since") { Description = "Show logs since a timestamp (RFC 3339 or unix seconds) or relative (e.g. 42m)" };
        var until = new Option<string?>("--until") { Description = "Show logs before a timestamp (RFC 3339 or unix seconds) or relative (e.g. 42m)" };
        var id = new Argument<string>("CONTAINER");
        var cmd = new Command("logs", "Fetch the logs of a container") { follow, tail, timestamps, since, until, id };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            string? s = pr.GetValue(since) is { Length: > 0 } v ? SinceSeconds(v) : null;
            DateTimeOffset? u = pr.GetValue(until) is { Length: > 0 } uv ? UntilTime(uv) : null;
            await PrintLogs(c, pr.GetValue(id)!, pr.GetValue(follow), pr.GetValue(tail), pr.GetValue(timestamps), ct, s, u);
            return 0;
        });
        return cmd;
    }

    /// <summary>--until as a point in time, to the tick (a timestamp copied from `logs -t` includes its own line).</summary>
    private static DateTimeOffset UntilTime(string v)
    {
        if (decimal.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal secs))
            return DateTimeOffset.UnixEpoch.AddTicks((long)(secs * TimeSpan.TicksPerSecond));
        if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)) return t;
        if (ParseDuration(v) is TimeSpan d) return DateTimeOffset.UtcNow - d;
        throw new CliException($"invalid --until {v}: expected a timestamp, unix seconds or a duration like 10m");
    }

    private static string SinceSeconds(string v)
    {
        if (decimal.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out _)) return v;
        if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            return (t.ToUnixTimeMilliseconds() / 1000m).ToString(CultureInfo.InvariantCulture);
        if (ParseDuration(v) is TimeSpan d) return ((DateTimeOffset.UtcNow - d).ToUnixTimeMilliseconds() / 1000m).ToString(CultureInfo.InvariantCulture);
        throw new CliException($"invalid --since {v}: expected a timestamp, unix seconds or a duration like 10m");
    }

    /// <param name="until">docker's --until: lines written after it are not shown, and a follow ends at the first of them.</param>
    private static async Task PrintLogs(Client c, string id, bool follow, string? tail, bool timestamps, CancellationToken ct, string? since = null, DateTimeOffset? until = null)
    {
        var q = new List<string>();
        if (follow) q.Add("follow=true");
        if (!string.IsNullOrEmpty(tail)) q.Add("tail=" + Uri.EscapeDataString(tail));
        if (since is not null) q.Add("since=" + since);
        using Stream stdout = Console.OpenStandardOutput(), stderr = Console.OpenStandardError();
        await foreach (string line in c.Lines($"v1/containers/{Esc(id)}/logs{(q.Count > 0 ? "?" + string.Join('&', q) : "")}", ct))
        {
            ContainerLogLine? l = JsonSerializer.Deserialize(line, ContainerJson.Default.ContainerLogLine);
            if (l is null) continue;
            if (until is not null && l.Time > until) break;
            string text = timestamps ? l.Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture) + " " + l.Log : l.Log;
            Stream to = l.Stream == "stderr" ? stderr : stdout;
            await to.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), ct);
            await to.FlushAsync(ct);
        }
    }

    private Command InspectContainer()
    {
        var ids = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var format = InspectFormatOption();
        var cmd = new Command("inspect", "Display detailed information on one or more containers") { format, ids };
        cmd.SetAction(async (pr, ct) =>
        {
            Template? template = pr.GetValue(format) is { Length: > 0 } f && f != "json" ? Template.Parse(f) : null;
            using Client c = Connect(pr);
            var docs = new List<string>();
            foreach (string id in pr.GetValue(ids)!)
            {
                ContainerInspect i = await c.Get($"v1/containers/{Esc(id)}", ContainerJson.Default.ContainerInspect, ct);
                docs.Add(JsonSerializer.Serialize(i, IndentedContainers.ContainerInspect));
            }
            if (PrintInspectTemplate(template, docs)) return 0;
            Console.Out.WriteLine("[\n" + string.Join(",\n", docs) + "\n]");
            return 0;
        });
        return cmd;
    }

    private static readonly ContainerJson IndentedContainers = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    });

    private Command ExecCmd()
    {
        var env = new Option<string[]>("--env", "-e") { Description = "Set environment variables", Arity = ArgumentArity.ZeroOrMore };
        var workdir = new Option<string?>("--workdir", "-w") { Description = "Working directory inside the container" };
        var user = new Option<string?>("--user", "-u") { Description = "Username or UID (format: <name|uid>[:<group|gid>])" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "Keep STDIN open even if not attached" };
        var tty = new Option<bool>("--tty", "-t") { Description = "Allocate a pseudo-TTY" };
        var detach = new Option<bool>("--detach", "-d") { Description = "Detached mode: run command in the background" };
        var keys = DetachKeysOption();
        var id = new Argument<string>("CONTAINER");
        var command = new Argument<string[]>("COMMAND") { Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("exec", "Execute a command in a running container") { env, workdir, user, interactive, tty, detach, keys, id, command };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            bool d = pr.GetValue(detach);
            var req = new ExecCreateRequest
            {
                Cmd = [.. pr.GetValue(command)!], Env = pr.GetValue(env) is { Length: > 0 } e ? [.. e] : null,
                WorkingDir = pr.GetValue(workdir), User = pr.GetValue(user), Tty = pr.GetValue(tty) && !d, OpenStdin = pr.GetValue(interactive) && !d,
            };
            return await ExecStream(c, pr.GetValue(id)!, req, d, pr.GetValue(keys), ct);
        });
        return cmd;
    }
}

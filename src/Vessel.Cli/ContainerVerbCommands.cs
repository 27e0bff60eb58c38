using System.CommandLine;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>What `vessel stats --format json` prints per container (docker's field names and formatting).</summary>
internal sealed record StatsLine(
    [property: JsonPropertyName("BlockIO")] string BlockIO,
    [property: JsonPropertyName("CPUPerc")] string CPUPerc,
    [property: JsonPropertyName("Container")] string Container,
    [property: JsonPropertyName("ID")] string ID,
    [property: JsonPropertyName("MemPerc")] string MemPerc,
    [property: JsonPropertyName("MemUsage")] string MemUsage,
    [property: JsonPropertyName("Name")] string Name,
    [property: JsonPropertyName("NetIO")] string NetIO,
    [property: JsonPropertyName("PIDs")] string PIDs);

[JsonSerializable(typeof(StatsLine))]
internal sealed partial class StatsJson : JsonSerializerContext;

/// <summary>The container verbs around a container's life: top, stats, cp, commit, diff, rename, pause, unpause, update, port.</summary>
internal sealed partial class Commands
{
    private void AddContainerVerbCommands(RootCommand root)
    {
        root.Subcommands.Add(ContainerGroup());
        root.Subcommands.Add(TopCmd());
        root.Subcommands.Add(StatsCmd());
        root.Subcommands.Add(CpCmd());
        root.Subcommands.Add(CommitCmd());
        root.Subcommands.Add(DiffCmd());
        root.Subcommands.Add(RenameCmd());
        root.Subcommands.Add(EachContainer("pause", "Pause all processes within one or more containers",
            (c, pr, id, ct) => c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/pause", null, ct)));
        root.Subcommands.Add(EachContainer("unpause", "Unpause all processes within one or more containers",
            (c, pr, id, ct) => c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/unpause", null, ct)));
        root.Subcommands.Add(UpdateCmd());
        root.Subcommands.Add(PortCmd());
    }

    /// <summary>`vessel container …`: docker's management command, the same verbs again (`ls`/`list`/`ps`, `rm`/`remove`).</summary>
    private Command ContainerGroup()
    {
        var ls = Ps("ls");
        ls.Aliases.Add("list");
        ls.Aliases.Add("ps");
        var rm = RmCmd();
        rm.Aliases.Add("remove");
        var group = new Command("container", "Manage containers")
        {
            AttachCmd(), CommitCmd(), CpCmd(), CreateCmd(), DiffCmd(), ExecCmd(), InspectContainer(), KillCmd(), LogsCmd(), ls,
            EachContainer("pause", "Pause all processes within one or more containers",
                (c, pr, id, ct) => c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/pause", null, ct)),
            PortCmd(), RenameCmd(), RestartCmd(), rm, Run(), StartCmd(), StatsCmd(), StopCmd(), TopCmd(),
            EachContainer("unpause", "Unpause all processes within one or more containers",
                (c, pr, id, ct) => c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/unpause", null, ct)),
            UpdateCmd(), WaitCmd(),
        };
        return group;
    }

    // ---- top -----------------------------------------------------------------------------------------------

    private Command TopCmd()
    {
        var id = new Argument<string>("CONTAINER");
        var psArgs = new Argument<string[]>("ps OPTIONS") { Arity = ArgumentArity.ZeroOrMore, Description = "Options for ps (default -ef columns)" };
        var cmd = new Command("top", "Display the running processes of a container") { id, psArgs };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            string[] a = pr.GetValue(psArgs) ?? [];
            string q = a.Length > 0 ? "?ps_args=" + Uri.EscapeDataString(string.Join(' ', a)) : "";
            ContainerTopResponse r = await c.Get($"v1/containers/{Esc(pr.GetValue(id)!)}/top{q}", ContainerVerbsJson.Default.ContainerTopResponse, ct);
            var t = new Table([.. r.Titles]);
            foreach (var row in r.Processes) t.Add([.. row]);
            Console.Out.Write(t.ToString());
            return 0;
        });
        return cmd;
    }

    // ---- stats ---------------------------------------------------------------------------------------------

    private Command StatsCmd()
    {
        var all = new Option<bool>("--all", "-a") { Description = "Show all containers (default shows just running)" };
        var noStream = new Option<bool>("--no-stream") { Description = "Disable streaming stats and only pull the first result" };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "Do not truncate output" };
        var format = TemplateFormatOption();
        var ids = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("stats", "Display a live stream of container(s) resource usage statistics") { all, noStream, noTrunc, format, ids };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format, templates: true), once = pr.GetValue(noStream), trunc = !pr.GetValue(noTrunc);
            string[] named = pr.GetValue(ids) ?? [];
            using Client c = Connect(pr);
            var latest = new Dictionary<string, ContainerStats>();
            var order = new List<string>();
            var streams = new Dictionary<string, (Task Task, CancellationTokenSource Cts)>();
            var errors = new List<string>();

            async Task<List<(string Id, string Name)>> Targets()
            {
                if (named.Length == 0)
                {
                    var list = await c.Get($"v1/containers{(pr.GetValue(all) ? "?all=true" : "")}", ContainerJson.Default.ListContainerSummary, ct);
                    return list.OrderBy(s => s.Created).Select(s => (s.Id, s.Name)).ToList();
                }
                var found = new List<(string, string)>();
                foreach (string n in named)
                {
                    ContainerInspect i = await c.Get($"v1/containers/{Esc(n)}", ContainerJson.Default.ContainerInspect, ct);
                    found.Add((i.Id, i.Name));
                }
                return found;
            }

            void Follow(string id, string name, bool stream)
            {
                lock (latest) if (!latest.ContainsKey(id)) { latest[id] = new ContainerStats { Id = id, Name = name, Read = DateTimeOffset.UtcNow }; order.Add(id); }
                var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                Task task = Task.Run(async () =>
                {
                    try
                    {
                        await foreach (string line in c.Lines($"v1/containers/{Esc(id)}/stats?stream={(stream ? "true" : "false")}", cts.Token))
                        {
                            ContainerStats? s = JsonSerializer.Deserialize(line, ContainerVerbsJson.Default.ContainerStats);
                            if (s is not null) lock (latest) latest[id] = s;
                        }
                    }
                    catch (Exception e) when (e is CliException or OperationCanceledException or IOException)
                    {
                        if (e is CliException && !cts.IsCancellationRequested) lock (errors) errors.Add(e.Message);
                    }
                });
                streams[id] = (task, cts);
            }

            void Render(bool clear)
            {
                List<ContainerStats> rows;
                lock (latest) rows = order.Where(latest.ContainsKey).Select(i => latest[i]).ToList();
                if (json)
                {
                    foreach (var s in rows) JsonLine(Line(s, trunc), StatsJson.Default.StatsLine);
                    return;
                }
                if (clear) Console.Out.Write("\u001b[2J\u001b[H");
                if (Templated(pr, format, rows, s => StatsRow(Line(s, trunc)))) { Console.Out.Flush(); return; }
                var t = new Table("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS");
                foreach (var s in rows)
                {
                    StatsLine l = Line(s, trunc);
                    t.Add(l.ID, l.Name, l.CPUPerc, l.MemUsage, l.MemPerc, l.NetIO, l.BlockIO, l.PIDs);
                }
                Console.Out.Write(t.ToString());
                Console.Out.Flush();
            }

            var targets = await Targets();
            if (once)
            {
                foreach (var (id, name) in targets) Follow(id, name, stream: false);
                await Task.WhenAll(streams.Values.Select(s => s.Task));
                lock (errors) if (errors.Count > 0 && named.Length > 0) throw new CliException(errors[^1]);
                Render(clear: false);
                return 0;
            }
            bool tty = !Console.IsOutputRedirected && !json;
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    foreach (var (id, name) in targets.Where(t => !streams.ContainsKey(t.Id))) Follow(id, name, stream: true);
                    if (named.Length == 0)
                    {
                        // Containers that went away (or stopped, without -a) leave the table, as with docker.
                        var keep = targets.Select(t => t.Id).ToHashSet();
                        foreach (string gone in streams.Keys.Where(k => !keep.Contains(k)).ToList())
                        {
                            streams[gone].Cts.Cancel();
                            streams.Remove(gone);
                            lock (latest) { latest.Remove(gone); order.Remove(gone); }
                        }
                    }
                    await Task.Delay(1000, ct);
                    Render(tty);
                    if (named.Length == 0) targets = await Targets();
                }
            }
            catch (OperationCanceledException) { }
            finally
            {
                foreach (var s in streams.Values) s.Cts.Cancel();
            }
            return 0;
        });
        return cmd;
    }

    private static StatsLine Line(ContainerStats s, bool trunc)
    {
        string id = trunc && s.Id.Length > 12 ? s.Id[..12] : s.Id;
        if (!s.Running)
            return new StatsLine("--", "0.00%", id, id, "0.00%", "0B / 0B", s.Name, "--", "0");
        double cpu = 0;
        if (s.PreSystemCpu > 0 && s.SystemCpu > s.PreSystemCpu && s.CpuTotal >= s.PreCpuTotal)
            cpu = (double)(s.CpuTotal - s.PreCpuTotal) / (s.SystemCpu - s.PreSystemCpu) * s.OnlineCpus * 100;
        double mem = s.MemoryLimit > 0 ? (double)s.MemoryUsage / s.MemoryLimit * 100 : 0;
        return new StatsLine(
            $"{Human.Size(s.BlockRead)} / {Human.Size(s.BlockWrite)}", cpu.ToString("F2", CultureInfo.InvariantCulture) + "%", id, id,
            mem.ToString("F2", CultureInfo.InvariantCulture) + "%", $"{BinarySize(s.MemoryUsage)} / {BinarySize(s.MemoryLimit)}", s.Name,
            $"{Human.Size(s.NetRx)} / {Human.Size(s.NetTx)}", s.Pids.ToString(CultureInfo.InvariantCulture));
    }

    private static readonly string[] BinaryUnits = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>go-units BytesSize: binary units, 4 significant digits ("1.504MiB", "23.54GiB").</summary>
    internal static string BinarySize(double size)
    {
        int i = 0;
        while (size >= 1024 && i < BinaryUnits.Length - 1) { size /= 1024; i++; }
        return size.ToString("G4", CultureInfo.InvariantCulture) + BinaryUnits[i];
    }

    // ---- diff / rename / port --------------------------------------------------------------------------------

    private Command DiffCmd()
    {
        var id = new Argument<string>("CONTAINER");
        var cmd = new Command("diff", "Inspect changes to files or directories on a container's filesystem") { id };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            List<ContainerChange> changes = await c.Get($"v1/containers/{Esc(pr.GetValue(id)!)}/changes", ContainerVerbsJson.Default.ListContainerChange, ct);
            var sb = new StringBuilder();
            foreach (var ch in changes) sb.Append(ch.Kind).Append(' ').Append(ch.Path).Append('\n');
            Console.Out.Write(sb.ToString());
            return 0;
        });
        return cmd;
    }

    private Command RenameCmd()
    {
        var id = new Argument<string>("CONTAINER");
        var name = new Argument<string>("NEW_NAME");
        var cmd = new Command("rename", "Rename a container") { id, name };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            await c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(pr.GetValue(id)!)}/rename?name={Uri.EscapeDataString(pr.GetValue(name)!)}", null, ct);
            return 0;
        });
        return cmd;
    }

    private Command PortCmd()
    {
        var id = new Argument<string>("CONTAINER");
        var priv = new Argument<string?>("PRIVATE_PORT[/PROTO]") { Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("port", "List port mappings or a specific mapping for the container") { id, priv };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            ContainerInspect i = await c.Get($"v1/containers/{Esc(pr.GetValue(id)!)}", ContainerJson.Default.ContainerInspect, ct);
            var ports = i.Ports ?? [];
            static string Host(PortMapping p) => $"{(string.IsNullOrEmpty(p.HostIp) ? "0.0.0.0" : p.HostIp)}:{p.HostPort}";
            if (pr.GetValue(priv) is { Length: > 0 } want)
            {
                string[] parts = want.Split('/', 2);
                string proto = parts.Length > 1 ? parts[1].ToLowerInvariant() : "tcp";
                if (!int.TryParse(parts[0], out int port) || port is <= 0 or > 65535 || proto is not ("tcp" or "udp" or "sctp"))
                    throw new CliException($"invalid port \"{want}\": expected PORT[/tcp|udp|sctp]");
                var match = ports.Where(p => p.ContainerPort == port && p.Proto == proto).ToList();
                if (match.Count == 0) throw new CliException($"no public port '{port}/{proto}' published for {i.Name}");
                foreach (var p in match) Console.Out.WriteLine(Host(p));
                return 0;
            }
            foreach (var p in ports.OrderBy(p => p.ContainerPort).ThenBy(p => p.Proto, StringComparer.Ordinal))
                Console.Out.WriteLine($"{p.ContainerPort}/{p.Proto} -> {Host(p)}");
            return 0;
        });
        return cmd;
    }

    // ---- update --------------------------------------------------------------------------------------------

    private Command UpdateCmd()
    {
        var cpus = new Option<double?>("--cpus") { Description = "Number of CPUs" };
        var cpuShares = new Option<long?>("--cpu-shares", "-c") { Description = "CPU shares (relative weight)" };
        var memory = new Option<string?>("--memory", "-m") { Description = "Memory limit" };
        var memorySwap = new Option<string?>("--memory-swap") { Description = "Swap limit equal to memory plus swap: -1 to enable unlimited swap" };
        var pids = new Option<long?>("--pids-limit") { Description = "Tune container pids limit (set -1 for unlimited)" };
        var restart = new Option<string?>("--restart") { Description = "Restart policy to apply when a container exits" };
        var ids = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("update", "Update configuration of one or more containers") { cpus, cpuShares, memory, memorySwap, pids, restart, ids };
        cmd.SetAction(async (pr, ct) =>
        {
            string? swap = pr.GetValue(memorySwap);
            var req = new ContainerUpdateRequest
            {
                Cpus = pr.GetValue(cpus), CpuShares = pr.GetValue(cpuShares), PidsLimit = pr.GetValue(pids), RestartPolicy = pr.GetValue(restart),
                Memory = pr.GetValue(memory) is { } m ? ParseBytes(m) : null,
                MemorySwap = swap is null ? null : swap.Trim() == "-1" ? -1 : ParseBytes(swap),
            };
            if (req is { Cpus: null, CpuShares: null, PidsLimit: null, RestartPolicy: null, Memory: null, MemorySwap: null })
                throw new CliException("you must provide one or more flags when using this command");
            using Client c = Connect(pr);
            await ForEachName(pr.GetValue(ids)!, async id =>
            {
                ContainerUpdateResponse r = await c.Send(HttpMethod.Post, $"v1/containers/{Esc(id)}/update",
                    Client.Json(req, ContainerVerbsJson.Default.ContainerUpdateRequest), ContainerVerbsJson.Default.ContainerUpdateResponse, ct);
                foreach (string w in r.Warnings) Console.Error.WriteLine($"WARNING: {w}");
                Console.Out.WriteLine(id);
            });
            return 0;
        });
        return cmd;
    }

    // ---- commit --------------------------------------------------------------------------------------------

    private Command CommitCmd()
    {
        var author = new Option<string?>("--author", "-a") { Description = "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")" };
        var change = new Option<string[]>("--change", "-c") { Description = "Apply Dockerfile instruction to the created image", Arity = ArgumentArity.ZeroOrMore };
        var message = new Option<string?>("--message", "-m") { Description = "Commit message" };
        var pause = new Option<bool>("--pause", "-p") { Description = "Pause container during commit", DefaultValueFactory = _ => true };
        var id = new Argument<string>("CONTAINER");
        var name = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("commit", "Create a new image from a container's changes") { author, change, message, pause, id, name };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            var req = new ContainerCommitRequest
            {
                Name = pr.GetValue(name), Author = pr.GetValue(author), Comment = pr.GetValue(message),
                Changes = pr.GetValue(change) is { Length: > 0 } ch ? [.. ch] : null, Pause = pr.GetValue(pause),
            };
            ContainerCommitResponse r = await c.Send(HttpMethod.Post, $"v1/containers/{Esc(pr.GetValue(id)!)}/commit",
                Client.Json(req, ContainerVerbsJson.Default.ContainerCommitRequest), ContainerVerbsJson.Default.ContainerCommitResponse, ct);
            Console.Out.WriteLine(r.Id);
            return 0;
        });
        return cmd;
    }

    // ---- cp ------------------------------------------------------------------------------------------------

    private Command CpCmd()
    {
        var archive = new Option<bool>("--archive", "-a") { Description = "Archive mode (copy all uid/gid information)" };
        var follow = new Option<bool>("--follow-link", "-L") { Description = "Always follow symbol link in SRC_PATH" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Suppress progress output during copy" };
        var src = new Argument<string>("SRC_PATH");
        var dst = new Argument<string>("DEST_PATH");
        var cmd = new Command("cp", """
            Copy files/folders between a container and the local filesystem

            Use '-' as the source to read a tar archive from stdin
            and extract it to a directory destination in a container.
            Use '-' as the destination to stream a tar archive of a
            container source to stdout.
            """) { archive, follow, quiet, src, dst };
        cmd.SetAction(async (pr, ct) =>
        {
            var (srcContainer, srcPath) = SplitCpArg(pr.GetValue(src)!);
            var (dstContainer, dstPath) = SplitCpArg(pr.GetValue(dst)!);
            if (srcContainer is not null && dstContainer is not null) throw new CliException("copying between containers is not supported");
            if (srcContainer is null && dstContainer is null) throw new CliException("must specify at least one container source");
            if (srcPath.Length == 0 || dstPath.Length == 0) throw new CliException("filename cannot be empty");
            using Client c = Connect(pr);
            var cp = new ContainerCopy(c, pr.GetValue(archive), pr.GetValue(follow), pr.GetValue(quiet));
            if (srcContainer is not null) await cp.FromContainer(srcContainer, srcPath, dstPath, ct);
            else await cp.ToContainer(srcPath, dstContainer!, dstPath, ct);
            return 0;
        });
        return cmd;
    }

    /// <summary>docker's rule: an argument starting with "/" or "." is local; else "NAME:PATH" names a container.</summary>
    private static (string? Container, string Path) SplitCpArg(string arg)
    {
        if (arg.StartsWith('/') || arg.StartsWith('.')) return (null, arg);
        int colon = arg.IndexOf(':');
        return colon <= 0 ? (null, arg) : (arg[..colon], arg[(colon + 1)..]);
    }
}

/// <summary>`vessel cp` on the client side: builds or unpacks the tar streams of the archive endpoints, with docker's
/// rules for where things land (an existing directory receives SRC by its name; a missing DEST is SRC renamed; "SRC/."
/// copies the contents). Local extraction never writes through a symlink (each parent is checked) nor outside DEST.</summary>
internal sealed class ContainerCopy(Client c, bool archive, bool followLink, bool quiet)
{
    private static string Esc(string s) => Uri.EscapeDataString(s);

    private static bool CopiesContents(string path) => path.EndsWith("/.", StringComparison.Ordinal) || path == ".";

    private async Task<ContainerPathStat?> StatInContainer(string container, string path, CancellationToken ct)
    {
        using HttpResponseMessage? resp = await TryHead($"v1/containers/{Esc(container)}/archive?path={Esc(path)}", ct);
        if (resp is null) return null;
        return DecodeStat(resp.Headers.TryGetValues(ContainerVerbsJson.PathStatHeader, out var v) ? v.FirstOrDefault() : null);
    }

    /// <summary>HEAD has no body: a 404 (a missing path; the container was checked before) comes back as "404 …".</summary>
    private async Task<HttpResponseMessage?> TryHead(string path, CancellationToken ct)
    {
        try { return await c.Stream(HttpMethod.Head, path, null, ct); }
        catch (CliException e) when (e.Message.StartsWith("404", StringComparison.Ordinal)) { return null; }
    }

    private async Task CheckContainer(string container, CancellationToken ct) =>
        await c.Get($"v1/containers/{Esc(container)}", ContainerJson.Default.ContainerInspect, ct);

    private static ContainerPathStat? DecodeStat(string? header)
    {
        if (string.IsNullOrEmpty(header)) return null;
        try { return JsonSerializer.Deserialize(Convert.FromBase64String(header), ContainerVerbsJson.Default.ContainerPathStat); }
        catch (Exception e) when (e is FormatException or JsonException) { return null; }
    }

    private static bool IsDir(uint mode) => (mode & 0xF000) == 0x4000;

    // ---- container → local ---------------------------------------------------------------------------------

    public async Task FromContainer(string container, string src, string dst, CancellationToken ct)
    {
        await CheckContainer(container, ct);
        if (followLink)
        {
            // -L: a symlink SRC is replaced by what it points to (resolved by the daemon inside the container).
            ContainerPathStat? s = await StatInContainer(container, src, ct);
            if (s?.LinkTarget is { Length: > 0 } target)
                src = target.StartsWith('/') ? target : (Path.GetDirectoryName(src.TrimEnd('/')) ?? "/") + "/" + target;
        }
        using HttpResponseMessage resp = await c.Stream(HttpMethod.Get, $"v1/containers/{Esc(container)}/archive?path={Esc(src)}", null, ct);
        ContainerPathStat stat = DecodeStat(resp.Headers.TryGetValues(ContainerVerbsJson.PathStatHeader, out var v) ? v.FirstOrDefault() : null)
            ?? throw new CliException("the daemon sent no stat of the source path");
        await using Stream body = await resp.Content.ReadAsStreamAsync(ct);
        if (dst == "-")
        {
            await using Stream stdout = Console.OpenStandardOutput();
            await body.CopyToAsync(stdout, ct);
            return;
        }
        bool srcIsDir = IsDir(stat.Mode);
        string srcBase = stat.Name == "/" ? "." : stat.Name;
        string dstFull = Path.GetFullPath(dst);
        string extractDir;
        string? rename = null; // the tar's top name → this name
        bool contents = srcIsDir && CopiesContents(src);
        if (Directory.Exists(dstFull))
        {
            extractDir = dstFull;
            if (contents) rename = "";
        }
        else if (File.Exists(dstFull) || new FileInfo(dstFull).LinkTarget is not null)
        {
            if (srcIsDir) throw new CliException($"cannot copy a directory to a file: {dst}");
            extractDir = Path.GetDirectoryName(dstFull)!;
            rename = Path.GetFileName(dstFull);
        }
        else
        {
            if (dst.EndsWith('/') && !srcIsDir) throw new CliException($"no such directory: {dst}");
            extractDir = Path.GetDirectoryName(dstFull.TrimEnd('/'))!;
            if (!Directory.Exists(extractDir)) throw new CliException($"no such directory: {extractDir}");
            rename = Path.GetFileName(dstFull.TrimEnd('/'));
        }
        long bytes = await Task.Run(() => LocalExtract.Run(body, extractDir, srcBase, rename, archive), ct);
        if (!quiet) Console.Error.WriteLine($"Successfully copied {Human.Size(bytes)} to {dst}");
    }

    // ---- local → container ---------------------------------------------------------------------------------

    public async Task ToContainer(string src, string container, string dst, CancellationToken ct)
    {
        await CheckContainer(container, ct);
        if (src == "-")
        {
            ContainerPathStat? d = await StatInContainer(container, dst, ct);
            if (d is null) throw new CliException($"could not find the file {dst} in container {container}");
            if (!IsDir(d.Mode)) throw new CliException($"destination \"{container}:{dst}\" must be a directory");
            await Put(container, dst, Console.OpenStandardInput(), ct);
            return;
        }
        string srcFull = Path.GetFullPath(src);
        var info = new FileInfo(srcFull);
        bool srcIsLink = info.LinkTarget is not null;
        if (!info.Exists && !Directory.Exists(srcFull) && !srcIsLink) throw new CliException($"no such file or directory: {src}");
        if (srcIsLink && followLink)
        {
            var resolved = info.ResolveLinkTarget(returnFinalTarget: true) ?? throw new CliException($"cannot resolve the link {src}");
            srcFull = resolved.FullName;
            srcIsLink = false;
        }
        bool srcIsDir = !srcIsLink && Directory.Exists(srcFull);
        string srcBase = Path.GetFileName(srcFull.TrimEnd('/'));
        ContainerPathStat? dstStat = await StatInContainer(container, dst, ct);
        string extractDir, topName;
        bool contents = srcIsDir && CopiesContents(src);
        if (dstStat is not null && IsDir(dstStat.Mode))
        {
            extractDir = dst;
            topName = contents ? "" : srcBase;
        }
        else if (dstStat is not null)
        {
            if (srcIsDir) throw new CliException($"cannot copy a directory to a file: {container}:{dst}");
            extractDir = ParentOf(dst);
            topName = dstStat.Name;
        }
        else
        {
            if (dst.EndsWith('/') && !srcIsDir) throw new CliException($"no such directory: {container}:{dst}");
            extractDir = ParentOf(dst.TrimEnd('/'));
            topName = dst.TrimEnd('/').Split('/')[^1];
            if (await StatInContainer(container, extractDir, ct) is not { } parent || !IsDir(parent.Mode))
                throw new CliException($"no such directory: {container}:{extractDir}");
        }
        var pipe = new Pipe();
        long bytes = 0;
        Task writer = Task.Run(() =>
        {
            try
            {
                using Stream w = pipe.Writer.AsStream();
                bytes = LocalTar.Write(srcFull, topName, srcIsDir && contents, archive, w);
                pipe.Writer.Complete();
            }
            catch (Exception e)
            {
                pipe.Writer.Complete(e);
                throw;
            }
        }, ct);
        Task put = Put(container, extractDir, pipe.Reader.AsStream(), ct);
        await Task.WhenAll(writer, put);
        if (!quiet) Console.Error.WriteLine($"Successfully copied {Human.Size(bytes)} to {container}:{dst}");
    }

    private static string ParentOf(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    private async Task Put(string container, string dir, Stream tar, CancellationToken ct)
    {
        var content = new StreamContent(tar, 64 * 1024);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-tar");
        await c.SendNoContent(HttpMethod.Put, $"v1/containers/{Esc(container)}/archive?path={Esc(dir)}", content, ct);
    }
}

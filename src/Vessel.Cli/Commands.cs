using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>The command tree. Every action returns an exit code; failures are thrown as <see cref="CliException"/>.</summary>
internal sealed partial class Commands
{
    private readonly Option<string?> _host = new("--host", "-H")
    {
        Description = "Daemon socket to connect to (unix:///path; default $VESSEL_HOST, else $VESSEL_RUN_ROOT/vessel.sock, else unix:///run/vessel/vessel.sock)",
        Recursive = true,
    };
    private readonly Option<bool> _debug = new("--debug", "-D") { Description = "Enable debug output", Recursive = true };
    private ParseResult? _parsed;

    private static readonly ApiJson Indented = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    });

    public bool Debug => _parsed?.GetValue(_debug) ?? false;

    public RootCommand Build()
    {
        var root = new RootCommand("A Linux virtualization engine: containers, images and machines.") { _host, _debug };
        root.Subcommands.Add(Version());
        root.Subcommands.Add(Info("info"));
        root.Subcommands.Add(Events());
        root.Subcommands.Add(Images("images"));
        root.Subcommands.Add(Pull());
        root.Subcommands.Add(Push());
        root.Subcommands.Add(Login());
        root.Subcommands.Add(Logout());
        root.Subcommands.Add(History());
        root.Subcommands.Add(Save());
        root.Subcommands.Add(Load());
        root.Subcommands.Add(Import());
        root.Subcommands.Add(BuildCmd());
        root.Subcommands.Add(Tag());
        root.Subcommands.Add(Rmi("rmi"));
        root.Subcommands.Add(ImageGroup());
        root.Subcommands.Add(OperationGroup());
        root.Subcommands.Add(new Command("system", "Manage Vessel") { Info("info"), Events(), SystemDf(), Prune("prune", system: true) });
        AddContainerCommands(root);
        root.Subcommands.Add(NetworkGroup());
        root.Subcommands.Add(VmGroup());
        return root;
    }

    private Client Connect(ParseResult pr)
    {
        _parsed = pr;
        string? host = pr.GetValue(_host);
        if (string.IsNullOrEmpty(host)) host = Environment.GetEnvironmentVariable("VESSEL_HOST");
        bool given = !string.IsNullOrEmpty(host);
        string socket = given ? SocketOf(host!) : ApiInfo.DefaultSocket;
        return new Client(socket, Debug, given ? null : new AutoStart());
    }

    internal static string SocketOf(string host)
    {
        if (host.StartsWith("unix://", StringComparison.Ordinal)) host = host["unix://".Length..];
        else if (host.Contains("://", StringComparison.Ordinal))
            throw new CliException($"unsupported host {host}: vessel talks to vesseld on a Unix socket (unix:///path)");
        if (!host.StartsWith('/')) throw new CliException($"bad host unix://{host}: the socket path must be absolute (unix:///run/vessel/vessel.sock)");
        return host;
    }

    private static Option<string?> FormatOption() => new("--format")
    {
        Description = "Output format: 'table' (default, for people) or 'json' (one JSON object per line)",
    };

    /// <param name="templates">the command prints Go templates itself (<see cref="Templated"/>): a template is no error.</param>
    private static bool Json(ParseResult pr, Option<string?> format, bool templates = false) => pr.GetValue(format) switch
    {
        null or "" or "table" => false,
        "json" => true,
        string f when templates && Template.IsTemplate(f) => Template.Parse(f) is null,
        string f => throw new CliException($"unsupported --format {f}: use 'table' or 'json'{(f.Contains("{{", StringComparison.Ordinal) ? " (this command takes no Go template)" : "")}"),
    };

    private static void JsonLine<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, type));

    // ---- version / info -----------------------------------------------------------------------------------

    private Command Version()
    {
        var format = FormatOption();
        var cmd = new Command("version", "Show the Vessel version information") { format };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format);
            var client = new ClientVersion(ApiInfo.Version, ApiInfo.ApiVersion, "linux", ArchName());
            using Client c = Connect(pr);
            VersionResponse? server = null;
            CliException? failure = null;
            try { server = await c.Get("v1/version", ApiJson.Default.VersionResponse, ct); }
            catch (CliException e) { failure = e; }
            if (json) Console.Out.WriteLine(JsonSerializer.Serialize(new VersionOutput(client, server), CliJson.Default.VersionOutput));
            else
            {
                Console.Out.WriteLine($"Client:\n Version:     {client.Version}\n API version: {client.ApiVersion}\n OS/Arch:     {client.Os}/{client.Arch}");
                if (server is not null)
                    Console.Out.WriteLine($"\nServer:\n Version:     {server.Version}\n API version: {server.ApiVersion}\n OS/Arch:     {server.Os}/{server.Arch}\n Kernel:      {server.Kernel}");
            }
            if (failure is not null) throw failure;
            return 0;
        });
        return cmd;
    }

    private static string ArchName() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        var a => a.ToString().ToLowerInvariant(),
    };

    private Command Info(string name)
    {
        var format = FormatOption();
        var cmd = new Command(name, "Display system-wide information") { format };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format);
            using Client c = Connect(pr);
            SystemInfoResponse i = await c.Get("v1/system/info", ApiJson.Default.SystemInfoResponse, ct);
            if (json) { JsonLine(i, ApiJson.Default.SystemInfoResponse); return 0; }
            Console.Out.Write($"""
                Server:
                 Containers: {i.Containers}
                 VMs: {i.Machines}
                 Images: {i.Images}
                 Server Version: {i.Version}
                 Storage Driver: {i.Storage}
                 Cgroup Version: {i.CgroupMode}
                 Runtime: {i.Runtime.Name}{(i.Runtime.Version is null ? "" : " " + i.Runtime.Version)}
                 VM Accelerator: {i.Accel?.Accel ?? "unknown"}{(i.Accel is null ? "" : $" ({i.Accel.Reason})")}
                 Kernel Version: {i.Kernel}
                 Operating System: {i.Os}
                 Architecture: {i.Arch}
                 Daemon PID: {i.DaemonPid}
                 Socket: unix://{i.Socket}
                 Vessel Root Dir: {i.StateRoot}
                 Vessel Run Dir: {i.RunRoot}

                """);
            return 0;
        });
        return cmd;
    }

    // ---- events ----------------------------------------------------------------------------------------------

    private Command Events()
    {
        var since = new Option<string?>("--since") { Description = "Show events since timestamp (unix seconds, RFC 3339, or a duration like 10m ago)" };
        var until = new Option<string?>("--until") { Description = "Stream events until this timestamp ('now' ends at once after the history)" };
        var filter = new Option<string[]>("--filter", "-f")
        {
            Description = "Filter output based on conditions provided (type, event, container, image, volume, network; also action, id, name)",
            AllowMultipleArgumentsPerToken = false,
        };
        var format = TemplateFormatOption();
        var cmd = new Command("events", "Get real time events from the daemon") { since, until, filter, format };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format, templates: true);
            Template? template = Template.IsTemplate(pr.GetValue(format)) ? Template.Parse(pr.GetValue(format)!) : null;
            var query = new List<string>();
            DateTimeOffset now = DateTimeOffset.UtcNow;
            if (pr.GetValue(since) is { Length: > 0 } s) query.Add("since=" + UnixSeconds(s, now, "--since"));
            if (pr.GetValue(until) is { Length: > 0 } u) query.Add("until=" + UnixSeconds(u, now, "--until"));
            foreach (string f in pr.GetValue(filter) ?? [])
            {
                if (!f.Contains('=')) throw new CliException($"bad filter \"{f}\": expected key=value");
                query.Add("filter=" + Uri.EscapeDataString(f));
            }
            using Client c = Connect(pr);
            string path = "v1/events" + (query.Count > 0 ? "?" + string.Join('&', query) : "");
            try
            {
                await foreach (string line in c.Lines(path, ct))
                {
                    if (json) { Console.Out.WriteLine(line); continue; }
                    EventMessage e = JsonSerializer.Deserialize(line, ApiJson.Default.EventMessage)!;
                    if (template is not null) { template.Print([EventRow(e)], Console.Out); continue; }
                    var attrs = new List<string>();
                    if (e.Name is not null) attrs.Add($"name={e.Name}");
                    foreach (var (k, v) in e.Attributes ?? new Dictionary<string, string>()) attrs.Add($"{k}={v}");
                    Console.Out.WriteLine($"{Human.UnixNanos(e.Time)} {e.Type} {e.Action} {e.Id}{(attrs.Count > 0 ? $" ({string.Join(", ", attrs)})" : "")}");
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
            return 0;
        });
        return cmd;
    }

    /// <summary>"now", unix seconds (fractions allowed), RFC 3339, or a Go-style duration (10m, 1h30m) before now.</summary>
    internal static string UnixSeconds(string value, DateTimeOffset now, string what)
    {
        static string Fmt(DateTimeOffset t) => (t.ToUnixTimeMilliseconds() / 1000m).ToString("0.###", CultureInfo.InvariantCulture);
        if (value == "now") return Fmt(now);
        if (decimal.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal secs))
            return secs.ToString(CultureInfo.InvariantCulture);
        if (ParseDuration(value) is TimeSpan d) return Fmt(now - d);
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset t)) return Fmt(t);
        throw new CliException($"bad {what} {value}: use unix seconds, RFC 3339 (2024-05-06T07:08:09Z), a duration (10m) or 'now'");
    }

    private static TimeSpan? ParseDuration(string s)
    {
        var m = System.Text.RegularExpressions.Regex.Match(s, @"^(?:(\d+(?:\.\d+)?)(h|ms|m|s))+$");
        if (!m.Success) return null;
        TimeSpan total = TimeSpan.Zero;
        for (int i = 0; i < m.Groups[1].Captures.Count; i++)
        {
            double n = double.Parse(m.Groups[1].Captures[i].Value, CultureInfo.InvariantCulture);
            total += m.Groups[2].Captures[i].Value switch
            {
                "h" => TimeSpan.FromHours(n), "m" => TimeSpan.FromMinutes(n), "s" => TimeSpan.FromSeconds(n), _ => TimeSpan.FromMilliseconds(n),
            };
        }
        return total;
    }

    // ---- images ----------------------------------------------------------------------------------------------

    private Command Images(string name)
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only show image IDs" };
        var digests = new Option<bool>("--digests") { Description = "Show digests" };
        var all = new Option<bool>("--all", "-a") { Description = "Show all images (there are no intermediate images: the same as without)" };
        var format = TemplateFormatOption();
        var repo = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne, Description = "Only images of this repository (and tag)" };
        var cmd = new Command(name, "List images") { quiet, digests, all, format, repo };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format, templates: true);
            using Client c = Connect(pr);
            List<ImageSummary> list = await c.Get("v1/images", ApiJson.Default.ListImageSummary, ct);
            if (pr.GetValue(repo) is { Length: > 0 } r)
                list = list.Where(i => i.Repository == r || i.Name == r).ToList();
            if (pr.GetValue(quiet))
            {
                foreach (ImageSummary i in list) Console.Out.WriteLine(json ? JsonSerializer.Serialize(i.Id, ApiJson.Default.String) : Human.ShortId(i.Id));
                return 0;
            }
            if (json) { foreach (ImageSummary i in list) JsonLine(i, ApiJson.Default.ImageSummary); return 0; }
            if (Templated(pr, format, list.OrderByDescending(i => i.Created ?? DateTimeOffset.MinValue), i => ImageRow(i, DateTimeOffset.UtcNow))) return 0;
            bool withDigests = pr.GetValue(digests);
            Table t = withDigests ? new("REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE") : new("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
            DateTimeOffset now = DateTimeOffset.UtcNow;
            foreach (ImageSummary i in list.OrderByDescending(i => i.Created ?? DateTimeOffset.MinValue).ThenBy(i => i.Name, StringComparer.Ordinal))
            {
                string tag = i.Tag ?? "<none>";
                if (withDigests) t.Add(i.Repository, tag, i.Digest, Human.ShortId(i.Id), Human.Ago(i.Created, now), Human.Size(i.Size));
                else t.Add(i.Repository, tag, Human.ShortId(i.Id), Human.Ago(i.Created, now), Human.Size(i.Size));
            }
            Console.Out.Write(t.ToString());
            return 0;
        });
        return cmd;
    }

    private Command ImageGroup()
    {
        var ls = Images("ls");
        ls.Aliases.Add("list");
        var rm = Rmi("rm");
        rm.Aliases.Add("remove");
        var tag = Tag();
        var group = new Command("image", "Manage images")
        {
            ls, Inspect(), tag, rm, ImportLayout(), Pull(), Push(), History(), Prune("prune", system: false), Save(), Load(), Import(),
        };
        return group;
    }

    private Command Inspect()
    {
        var names = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore, Description = "Image name or ID" };
        var format = InspectFormatOption();
        var cmd = new Command("inspect", "Display detailed information on one or more images (a JSON array)") { format, names };
        cmd.SetAction(async (pr, ct) =>
        {
            Template? template = pr.GetValue(format) is { Length: > 0 } f && f != "json" ? Template.Parse(f) : null;
            using Client c = Connect(pr);
            var found = new List<ImageInspect>();
            var errors = new List<string>();
            foreach (string n in pr.GetValue(names)!)
            {
                try { found.Add(await c.Get("v1/images/" + Client.PathName(n), ApiJson.Default.ImageInspect, ct)); }
                catch (CliException e) { errors.Add(e.Message); }
            }
            if (!PrintInspectTemplate(template, found.Select(i => JsonSerializer.Serialize(i, Indented.ImageInspect))))
                Console.Out.WriteLine(JsonSerializer.Serialize(found, Indented.ListImageInspect));
            if (errors.Count == 0) return 0;
            Console.Out.Flush();
            foreach (string e in errors.Take(errors.Count - 1)) Console.Error.WriteLine($"vessel: {e}");
            throw new CliException(errors[^1]);
        });
        return cmd;
    }

    private Command Tag()
    {
        var source = new Argument<string>("SOURCE_IMAGE[:TAG]");
        var target = new Argument<string>("TARGET_IMAGE[:TAG]");
        var cmd = new Command("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE") { source, target };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            await c.SendNoContent(HttpMethod.Post, $"v1/images/{Client.PathName(pr.GetValue(source)!)}/tag",
                Client.Json(new TagRequest(pr.GetValue(target)!), ApiJson.Default.TagRequest), ct);
            return 0;
        });
        return cmd;
    }

    private Command Rmi(string name)
    {
        var force = new Option<bool>("--force", "-f") { Description = "Force removal of the image (untag every name of an ID)" };
        var names = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var cmd = new Command(name, "Remove one or more images") { force, names };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            await ForEachName(pr.GetValue(names)!, async n =>
            {
                ImageDeleteResponse r = await c.Send(HttpMethod.Delete, $"v1/images/{Client.PathName(n)}{(pr.GetValue(force) ? "?force=true" : "")}",
                    null, ApiJson.Default.ImageDeleteResponse, ct);
                foreach (string u in r.Untagged) Console.Out.WriteLine($"Untagged: {u}");
                foreach (string d in r.Deleted) Console.Out.WriteLine($"Deleted: {d}");
            });
            return 0;
        });
        return cmd;
    }

    private Command ImportLayout()
    {
        var dir = new Argument<string>("DIR") { Description = "An OCI image layout directory (oci-layout, index.json, blobs/)" };
        var name = new Argument<string?>("NAME") { Arity = ArgumentArity.ZeroOrOne, Description = "Name for the image (repo:tag), or a repository for the tags the layout names" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Suppress progress output" };
        var detach = new Option<bool>("--detach", "-d") { Description = "Print the operation ID and return at once" };
        var cmd = new Command("import-layout", "Import an OCI image layout directory") { dir, name, quiet, detach };
        cmd.Hidden = true;
        cmd.SetAction(async (pr, ct) =>
        {
            string path = Path.GetFullPath(pr.GetValue(dir)!);
            using Client c = Connect(pr);
            OperationInfo op = await c.Send(HttpMethod.Post, "v1/images/import-layout",
                Client.Json(new ImportLayoutRequest(path, pr.GetValue(name)), ApiJson.Default.ImportLayoutRequest), ApiJson.Default.OperationInfo, ct);
            if (pr.GetValue(detach)) { Console.Out.WriteLine(op.Id); return 0; }
            bool q = pr.GetValue(quiet);
            OperationInfo final;
            try
            {
                final = await Follow(c, op.Id, q, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try { await c.Send(HttpMethod.Delete, $"v1/operations/{op.Id}", null, ApiJson.Default.OperationInfo, grace.Token); }
                catch (Exception e) when (e is CliException or OperationCanceledException) { }
                throw new CliException($"import cancelled (operation {op.Id})", 130);
            }
            Finished(final);
            if (!q && final.Result is JsonElement res && res.Deserialize(ApiJson.Default.ImportLayoutResult) is { } r)
                foreach (string i in r.Images) Console.Out.WriteLine($"Loaded image: {i}");
            return 0;
        });
        return cmd;
    }

    internal static void Finished(OperationInfo op)
    {
        if (op.Status == OperationStatus.Succeeded) return;
        throw new CliException(op.Error?.Message is { Length: > 0 } m ? m : $"operation {op.Id} {op.Status}");
    }

    /// <summary>Follows an operation's progress stream: Spectre progress bars on a terminal, one plain line per
    /// event otherwise, nothing when quiet. Returns the final operation object (the stream's last line).</summary>
    private static async Task<OperationInfo> Follow(Client c, string id, bool quiet, CancellationToken ct)
    {
        IAsyncEnumerable<string> lines = c.Lines($"v1/operations/{id}/progress", ct);
        OperationInfo? final = null;
        bool tty = !quiet && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (tty)
        {
            await AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn())
                .StartAsync(async ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    await foreach (string line in lines)
                    {
                        if (Parse(line, out ProgressEvent? e, out final)) break;
                        string key = e!.Item ?? "";
                        if (!tasks.TryGetValue(key, out ProgressTask? t))
                            tasks[key] = t = ctx.AddTask(Markup.Escape(Human.ShortId(key)), maxValue: Math.Max(e.Total, 1));
                        t.Description = Markup.Escape($"{Human.ShortId(key)} {Label(e.Action)}");
                        if (e.Action is "done" or "exists" or "missing" or "untagged") { t.Value = t.MaxValue; t.StopTask(); }
                        else t.Value = Math.Min(e.Current, t.MaxValue);
                    }
                });
        }
        else
        {
            await foreach (string line in lines)
            {
                if (Parse(line, out ProgressEvent? e, out final)) break;
                if (quiet) continue;
                string size = e!.Total > 0 ? $" ({Human.Size(e.Total)})" : "";
                Console.Out.WriteLine($"{Human.ShortId(e.Item ?? id)}: {Label(e.Action)}{(e.Action == "copying" ? size : "")}{(e.Message is not null && e.Action == "untagged" ? ": " + e.Message : "")}");
            }
        }
        return final ?? throw new CliException($"operation {id}: the progress stream ended without a final status");
    }

    private static string Label(string action) => action switch
    {
        "copying" => "Copying", "done" => "Done", "exists" => "Already exists", "missing" => "Not in layout (optional)",
        "untagged" => "Untagged", _ => action,
    };

    /// <summary>A progress line (type "progress") or the final operation object.</summary>
    private static bool Parse(string line, out ProgressEvent? progress, out OperationInfo? final)
    {
        using JsonDocument doc = JsonDocument.Parse(line);
        if (doc.RootElement.TryGetProperty("status", out _))
        {
            progress = null;
            final = doc.RootElement.Deserialize(ApiJson.Default.OperationInfo);
            return true;
        }
        progress = doc.RootElement.Deserialize(ApiJson.Default.ProgressEvent);
        final = null;
        return false;
    }

    // ---- operations ------------------------------------------------------------------------------------------

    private Command OperationGroup()
    {
        var format = FormatOption();
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only show operation IDs" };
        var ls = new Command("ls", "List operations (running, and finished in the last hour)") { format, quiet };
        ls.Aliases.Add("list");
        ls.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format);
            using Client c = Connect(pr);
            List<OperationInfo> ops = await c.Get("v1/operations", ApiJson.Default.ListOperationInfo, ct);
            if (pr.GetValue(quiet)) { foreach (OperationInfo o in ops) Console.Out.WriteLine(o.Id); return 0; }
            if (json) { foreach (OperationInfo o in ops) JsonLine(o, ApiJson.Default.OperationInfo); return 0; }
            var t = new Table("ID", "KIND", "STATUS", "TARGET", "CREATED");
            DateTimeOffset now = DateTimeOffset.UtcNow;
            foreach (OperationInfo o in ops) t.Add(o.Id, o.Kind, o.Status, o.Target, Human.Ago(o.CreatedAt, now));
            Console.Out.Write(t.ToString());
            return 0;
        });

        var showId = new Argument<string>("ID");
        var show = new Command("show", "Display an operation (JSON)") { showId };
        show.Aliases.Add("inspect");
        show.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            OperationInfo o = await c.Get($"v1/operations/{Uri.EscapeDataString(pr.GetValue(showId)!)}", ApiJson.Default.OperationInfo, ct);
            Console.Out.WriteLine(JsonSerializer.Serialize(o, Indented.OperationInfo));
            return 0;
        });

        var waitId = new Argument<string>("ID");
        var waitFormat = FormatOption();
        var wait = new Command("wait", "Block until an operation finishes; exit 125 if it failed or was cancelled") { waitId, waitFormat };
        wait.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, waitFormat);
            using Client c = Connect(pr);
            OperationInfo o = await c.Get($"v1/operations/{Uri.EscapeDataString(pr.GetValue(waitId)!)}/wait", ApiJson.Default.OperationInfo, ct);
            if (json) JsonLine(o, ApiJson.Default.OperationInfo);
            else Console.Out.WriteLine($"{o.Id}: {o.Status}");
            Finished(o);
            return 0;
        });

        var cancelId = new Argument<string>("ID");
        var cancel = new Command("cancel", "Cancel a running operation") { cancelId };
        cancel.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            OperationInfo o = await c.Send(HttpMethod.Delete, $"v1/operations/{Uri.EscapeDataString(pr.GetValue(cancelId)!)}", null, ApiJson.Default.OperationInfo, ct);
            Console.Out.WriteLine($"{o.Id}: {o.Status}");
            return 0;
        });

        var group = new Command("operation", "Manage long-running operations") { ls, show, wait, cancel };
        group.Aliases.Add("op");
        return group;
    }
}

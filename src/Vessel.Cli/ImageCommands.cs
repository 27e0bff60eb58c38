using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>Registry and archive verbs: pull, push, login, logout, history, save, load, import, image/system prune, system df.</summary>
internal sealed partial class Commands
{
    // ---- pull / push -------------------------------------------------------------------------------------------

    private Command Pull()
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Suppress verbose output (print only the image name)" };
        var platform = new Option<string?>("--platform") { Description = "Pick this platform (os/arch[/variant]) from a multi-arch image (default linux/amd64)" };
        var name = new Argument<string>("NAME[:TAG|@DIGEST]");
        var cmd = new Command("pull", "Download an image from a registry") { quiet, platform, name };
        cmd.SetAction(async (pr, ct) =>
        {
            string n = pr.GetValue(name)!;
            bool q = pr.GetValue(quiet);
            using Client c = Connect(pr);
            OperationInfo op = await c.Send(HttpMethod.Post, "v1/images/pull",
                Client.Json(new PullRequest(n, pr.GetValue(platform)), ApiJson.Default.PullRequest), ApiJson.Default.OperationInfo, ct);
            if (!q) Console.Out.WriteLine($"{TagOf(op.Target)}: Pulling from {RepoOf(op.Target)}");
            OperationInfo final = await FollowOrCancel(c, op, q, pull: true, "pull", ct);
            Finished(final);
            PullResult r = final.Result!.Value.Deserialize(ApiJson.Default.PullResult)!;
            if (!q)
            {
                Console.Out.WriteLine($"Digest: {r.Digest}");
                Console.Out.WriteLine(r.UpToDate ? $"Status: Image is up to date for {r.Name}" : $"Status: Downloaded newer image for {r.Name}");
            }
            Console.Out.WriteLine(r.Name);
            return 0;
        });
        return cmd;
    }

    private Command Push()
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Suppress verbose output" };
        var name = new Argument<string>("NAME[:TAG]");
        var cmd = new Command("push", "Upload an image to a registry") { quiet, name };
        cmd.SetAction(async (pr, ct) =>
        {
            bool q = pr.GetValue(quiet);
            using Client c = Connect(pr);
            OperationInfo op = await c.Send(HttpMethod.Post, "v1/images/push",
                Client.Json(new PushRequest(pr.GetValue(name)!), ApiJson.Default.PushRequest), ApiJson.Default.OperationInfo, ct);
            if (!q) Console.Out.WriteLine($"The push refers to repository [{RepoOf(op.Target)}]");
            OperationInfo final = await FollowOrCancel(c, op, q, pull: false, "push", ct);
            Finished(final);
            PushResult r = final.Result!.Value.Deserialize(ApiJson.Default.PushResult)!;
            if (!q) Console.Out.WriteLine($"{TagOf(r.Name)}: digest: {r.Digest} size: {r.Size}");
            else Console.Out.WriteLine(r.Name);
            return 0;
        });
        return cmd;
    }

    private static string RepoOf(string name)
    {
        int at = name.IndexOf('@');
        if (at >= 0) return name[..at];
        int colon = name.LastIndexOf(':');
        return colon > name.LastIndexOf('/') ? name[..colon] : name;
    }

    private static string TagOf(string name)
    {
        int at = name.IndexOf('@');
        if (at >= 0) return name[(at + 1)..];
        int colon = name.LastIndexOf(':');
        return colon > name.LastIndexOf('/') ? name[(colon + 1)..] : "latest";
    }

    private static async Task<OperationInfo> FollowOrCancel(Client c, OperationInfo op, bool quiet, bool pull, string what, CancellationToken ct)
    {
        try { return await FollowTransfer(c, op.Id, quiet, pull, ct); }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try { await c.Send(HttpMethod.Delete, $"v1/operations/{op.Id}", null, ApiJson.Default.OperationInfo, grace.Token); }
            catch (Exception e) when (e is CliException or OperationCanceledException) { }
            throw new CliException($"{what} cancelled (operation {op.Id})", 130);
        }
    }

    private static bool IsConfig(ProgressEvent e) =>
        e.Message is { } m && (m.Contains(".config.", StringComparison.Ordinal) || m.Contains("container.image", StringComparison.Ordinal));

    private static string TransferLabel(string action, bool pull, string? previous) => action switch
    {
        "waiting" => pull ? "Waiting" : "Preparing",
        "downloading" => "Downloading",
        "uploading" => "Pushing",
        "verifying" => "Verifying Checksum",
        "done" => pull ? "Download complete" : "Pushed",
        "exists" => pull ? "Already exists" : "Layer already exists",
        "mounted" => "Mounted from another repository",
        "extracting" => "Extracting",
        "unpacked" => previous == "Already exists" ? "Already exists" : "Pull complete",
        "complete" => "Pull complete",
        _ => action,
    };

    /// <summary>Per-layer progress of a pull or push: Spectre bars on a terminal (<c>abc123: Downloading [===> ] 1.2MB/4.5MB</c>),
    /// one docker-like line per phase change otherwise, nothing when quiet. Config blobs are not shown, as docker.</summary>
    private static async Task<OperationInfo> FollowTransfer(Client c, string id, bool quiet, bool pull, CancellationToken ct)
    {
        IAsyncEnumerable<string> lines = c.Lines($"v1/operations/{id}/progress", ct);
        OperationInfo? final = null;
        var labels = new Dictionary<string, string>();
        bool tty = !quiet && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (tty)
        {
            await AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new DownloadedColumn())
                .StartAsync(async ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    await foreach (string line in lines)
                    {
                        if (Parse(line, out ProgressEvent? e, out final)) break;
                        if (e!.Item is null || IsConfig(e)) continue;
                        string label = TransferLabel(e.Action, pull, labels.GetValueOrDefault(e.Item));
                        labels[e.Item] = label;
                        if (!tasks.TryGetValue(e.Item, out ProgressTask? t))
                            tasks[e.Item] = t = ctx.AddTask(Markup.Escape($"{Human.ShortId(e.Item)}: {label}"), maxValue: Math.Max(e.Total, 1));
                        t.Description = Markup.Escape($"{Human.ShortId(e.Item)}: {label}");
                        if (e.Total > 0) t.MaxValue = e.Total;
                        bool full = e.Action is "done" or "exists" or "mounted" or "complete" or "unpacked";
                        // Extracting restarts the bar: it measures the layer again.
                        t.Value = full ? t.MaxValue : Math.Min(e.Current, t.MaxValue);
                        if (full && (!pull || e.Action is "complete" or "unpacked")) t.StopTask();
                    }
                });
        }
        else
        {
            await foreach (string line in lines)
            {
                if (Parse(line, out ProgressEvent? e, out final)) break;
                if (quiet || e!.Item is null || IsConfig(e)) continue;
                string label = TransferLabel(e.Action, pull, labels.GetValueOrDefault(e.Item));
                if (labels.GetValueOrDefault(e.Item) == label) continue;
                labels[e.Item] = label;
                Console.Out.WriteLine($"{Human.ShortId(e.Item)}: {label}");
            }
        }
        return final ?? throw new CliException($"operation {id}: the progress stream ended without a final status");
    }

    // ---- login / logout --------------------------------------------------------------------------------------

    private Command Login()
    {
        var user = new Option<string?>("--username", "-u") { Description = "Username" };
        var pass = new Option<string?>("--password", "-p") { Description = "Password (visible to other users in ps: prefer --password-stdin)" };
        var stdin = new Option<bool>("--password-stdin") { Description = "Take the password from stdin" };
        var server = new Argument<string?>("SERVER") { Arity = ArgumentArity.ZeroOrOne, Description = "Registry (default docker.io)" };
        var cmd = new Command("login", "Log in to a registry (credentials are verified, then kept by the daemon)") { user, pass, stdin, server };
        cmd.SetAction(async (pr, ct) =>
        {
            string? u = pr.GetValue(user), p = pr.GetValue(pass);
            if (pr.GetValue(stdin))
            {
                if (p is not null) throw new CliException("--password and --password-stdin are mutually exclusive");
                if (u is null) throw new CliException("must provide --username with --password-stdin");
                p = (await Console.In.ReadToEndAsync(ct)).TrimEnd('\n', '\r');
            }
            if (u is null)
            {
                if (Console.IsInputRedirected) throw new CliException("cannot prompt for a username: stdin is not a terminal (use -u)");
                u = AnsiConsole.Prompt(new TextPrompt<string>("Username:"));
            }
            if (p is null)
            {
                if (Console.IsInputRedirected) throw new CliException("cannot prompt for a password: stdin is not a terminal (use --password-stdin)");
                p = AnsiConsole.Prompt(new TextPrompt<string>("Password:").Secret());
            }
            else if (!pr.GetValue(stdin) && !Console.IsErrorRedirected)
                Console.Error.WriteLine("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            using Client c = Connect(pr);
            LoginResponse r = await c.Send(HttpMethod.Post, "v1/auth/login",
                Client.Json(new LoginRequest(pr.GetValue(server) ?? "docker.io", u, p), ApiJson.Default.LoginRequest), ApiJson.Default.LoginResponse, ct);
            Console.Out.WriteLine(r.Status);
            return 0;
        });
        return cmd;
    }

    private Command Logout()
    {
        var server = new Argument<string?>("SERVER") { Arity = ArgumentArity.ZeroOrOne, Description = "Registry (default docker.io)" };
        var cmd = new Command("logout", "Log out from a registry") { server };
        cmd.SetAction(async (pr, ct) =>
        {
            string s = pr.GetValue(server) ?? "docker.io";
            using Client c = Connect(pr);
            LogoutResponse r = await c.Send(HttpMethod.Delete, "v1/auth/" + Client.PathName(s), null, ApiJson.Default.LogoutResponse, ct);
            Console.Out.WriteLine(r.Removed ? $"Removing login credentials for {r.Server}" : $"Not logged in to {r.Server}");
            return 0;
        });
        return cmd;
    }

    // ---- history ---------------------------------------------------------------------------------------------

    private Command History()
    {
        var noTrunc = new Option<bool>("--no-trunc") { Description = "Don't truncate output" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only show image IDs" };
        var format = FormatOption();
        var image = new Argument<string>("IMAGE");
        var cmd = new Command("history", "Show the history of an image") { noTrunc, quiet, format, image };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format);
            using Client c = Connect(pr);
            List<HistoryItem> items = await c.Get($"v1/images/{Client.PathName(pr.GetValue(image)!)}/history", ApiJson.Default.ListHistoryItem, ct);
            bool full = pr.GetValue(noTrunc);
            if (pr.GetValue(quiet)) { foreach (HistoryItem h in items) Console.Out.WriteLine(h.Id is null ? "<missing>" : full ? h.Id : Human.ShortId(h.Id)); return 0; }
            if (json) { foreach (HistoryItem h in items) JsonLine(h, ApiJson.Default.HistoryItem); return 0; }
            var t = new Table("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT");
            DateTimeOffset now = DateTimeOffset.UtcNow;
            foreach (HistoryItem h in items)
            {
                string by = (h.CreatedBy ?? "").ReplaceLineEndings(" ");
                if (!full && by.Length > 45) by = by[..44] + "…";
                t.Add(h.Id is null ? "<missing>" : full ? h.Id : Human.ShortId(h.Id), Human.Ago(h.Created, now), by, Human.Size(h.Size), h.Comment ?? "");
            }
            Console.Out.Write(t.ToString());
            return 0;
        });
        return cmd;
    }

    // ---- save / load / import -----------------------------------------------------------------------------------

    private Command Save()
    {
        var output = new Option<string?>("--output", "-o") { Description = "Write to a file, instead of STDOUT" };
        var format = new Option<string?>("--format") { Description = "docker-archive (default; also an OCI layout) or oci-archive" };
        var names = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("save", "Save one or more images to a tar archive (streamed to STDOUT by default)") { output, format, names };
        cmd.SetAction(async (pr, ct) =>
        {
            string? file = pr.GetValue(output);
            if (file is null && !Console.IsOutputRedirected)
                throw new CliException("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            var query = pr.GetValue(names)!.Select(n => "names=" + Uri.EscapeDataString(n)).ToList();
            if (pr.GetValue(format) is { Length: > 0 } f) query.Add("format=" + Uri.EscapeDataString(f));
            using Client c = Connect(pr);
            using HttpResponseMessage resp = await c.Stream(HttpMethod.Get, "v1/images/save?" + string.Join('&', query), null, ct);
            await using Stream body = await resp.Content.ReadAsStreamAsync(ct);
            if (file is null)
            {
                await using Stream stdout = Console.OpenStandardOutput();
                await body.CopyToAsync(stdout, ct);
                return 0;
            }
            string tmp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, $".{Path.GetFileName(file)}.tmp-{Environment.ProcessId}");
            try
            {
                await using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
                {
                    try { await body.CopyToAsync(fs, ct); }
                    catch (Exception e) when (e is IOException or HttpRequestException)
                    { throw new CliException($"save: the daemon ended the archive early ({e.Message}); see vesseld's log"); }
                }
                File.Move(tmp, file, overwrite: true);
            }
            finally { if (File.Exists(tmp)) File.Delete(tmp); }
            return 0;
        });
        return cmd;
    }

    private Command Load()
    {
        var input = new Option<string?>("--input", "-i") { Description = "Read from a tar archive file, instead of STDIN" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Suppress the load output" };
        var cmd = new Command("load", "Load images from a tar archive (docker-archive or oci-archive) or STDIN") { input, quiet };
        cmd.SetAction(async (pr, ct) =>
        {
            string? file = pr.GetValue(input);
            if (file is null && !Console.IsInputRedirected)
                throw new CliException("requested load from stdin, but stdin is empty (a terminal); use -i FILE or redirect");
            await using Stream src = file is null ? Console.OpenStandardInput() : OpenInput(file);
            using Client c = Connect(pr);
            using var content = new StreamContent(src, 1 << 16);
            content.Headers.ContentType = new("application/x-tar");
            LoadResult r = await c.Send(HttpMethod.Post, "v1/images/load", content, ApiJson.Default.LoadResult, ct);
            if (!pr.GetValue(quiet))
                foreach (string n in r.Images)
                    Console.Out.WriteLine(n.StartsWith("sha256:", StringComparison.Ordinal) ? $"Loaded image ID: {n}" : $"Loaded image: {n}");
            return 0;
        });
        return cmd;
    }

    private Command Import()
    {
        var change = new Option<string[]>("--change", "-c") { Description = "Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)" };
        var message = new Option<string?>("--message", "-m") { Description = "Set the commit message for the imported image" };
        var platform = new Option<string?>("--platform") { Description = "Set the platform (os/arch) of the image (default linux/amd64)" };
        var file = new Argument<string>("file|-") { Description = "A rootfs tarball (tar, tar.gz, tar.zst), or - for STDIN" };
        var name = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("import", "Import the contents from a tarball to create a filesystem image") { change, message, platform, file, name };
        cmd.SetAction(async (pr, ct) =>
        {
            string f = pr.GetValue(file)!;
            if (f == "-" && !Console.IsInputRedirected) throw new CliException("import from stdin, but stdin is a terminal; redirect a tarball into it");
            var query = new List<string>();
            if (pr.GetValue(name) is { Length: > 0 } n) query.Add("name=" + Uri.EscapeDataString(n));
            foreach (string ch in pr.GetValue(change) ?? []) query.Add("changes=" + Uri.EscapeDataString(ch));
            if (pr.GetValue(message) is { Length: > 0 } m) query.Add("message=" + Uri.EscapeDataString(m));
            if (pr.GetValue(platform) is { Length: > 0 } p) query.Add("platform=" + Uri.EscapeDataString(p));
            await using Stream src = f == "-" ? Console.OpenStandardInput() : OpenInput(f);
            using Client c = Connect(pr);
            using var content = new StreamContent(src, 1 << 16);
            content.Headers.ContentType = new("application/x-tar");
            LoadResult r = await c.Send(HttpMethod.Post, "v1/images/import" + (query.Count > 0 ? "?" + string.Join('&', query) : ""), content, ApiJson.Default.LoadResult, ct);
            Console.Out.WriteLine(r.Ids.FirstOrDefault() ?? r.Images.FirstOrDefault() ?? "");
            return 0;
        });
        return cmd;
    }

    private static FileStream OpenInput(string file)
    {
        try { return new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"open {file}: {e.Message}"); }
    }

    // ---- prune / df --------------------------------------------------------------------------------------------

    private Command Prune(string name, bool system)
    {
        var all = new Option<bool>("--all", "-a") { Description = system ? "Remove all unused images, not just dangling ones" : "Remove all unused images, not just dangling ones" };
        var force = new Option<bool>("--force", "-f") { Description = "Do not prompt for confirmation" };
        var cmd = new Command(name, system ? "Remove unused data (images no container uses, unreferenced content)" : "Remove unused images") { all, force };
        cmd.SetAction(async (pr, ct) =>
        {
            bool a = pr.GetValue(all);
            if (!pr.GetValue(force))
            {
                string warning = system
                    ? $"WARNING! This will remove:\n  - {(a ? "all images without at least one container associated to them" : "all dangling images")}\n  - unreferenced content and unpacked layers\n"
                    : a ? "WARNING! This will remove all images without at least one container associated to them." : "WARNING! This will remove all dangling images.";
                if (Console.IsInputRedirected) throw new CliException($"{warning.Split('\n')[0]} Confirm with -f (stdin is not a terminal)");
                Console.Out.Write(warning + (system ? "" : "\n") + "Are you sure you want to continue? [y/N] ");
                string? answer = Console.ReadLine();
                if (answer?.Trim() is not ("y" or "Y" or "yes")) return 0;
            }
            using Client c = Connect(pr);
            PruneResponse r = await c.Send(HttpMethod.Post, $"v1/{(system ? "system" : "images")}/prune{(a ? "?all=true" : "")}", null, ApiJson.Default.PruneResponse, ct);
            if (r.Untagged.Count + r.Deleted.Count > 0)
            {
                Console.Out.WriteLine("Deleted Images:");
                foreach (string u in r.Untagged) Console.Out.WriteLine($"untagged: {u}");
                foreach (string d in r.Deleted) Console.Out.WriteLine($"deleted: {d}");
                Console.Out.WriteLine();
            }
            Console.Out.WriteLine($"Total reclaimed space: {Human.Size(r.SpaceReclaimed)}");
            return 0;
        });
        return cmd;
    }

    private Command SystemDf()
    {
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Show detailed information on space usage" };
        var format = FormatOption();
        var cmd = new Command("df", "Show disk usage") { verbose, format };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format);
            using Client c = Connect(pr);
            DiskUsageResponse d = await c.Get("v1/system/df", ApiJson.Default.DiskUsageResponse, ct);
            if (json) { JsonLine(d, ApiJson.Default.DiskUsageResponse); return 0; }
            static string Pct(long part, long whole) => whole == 0 ? "0B" : $"({part * 100 / whole}%)";
            var t = new Table("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE");
            t.Add("Images", d.Images.Count.ToString(), d.ActiveImages.ToString(), Human.Size(d.ImagesSize),
                $"{Human.Size(d.ImagesReclaimable)} {(d.ImagesSize == 0 ? "" : Pct(Math.Min(d.ImagesReclaimable, d.ImagesSize), d.ImagesSize))}".Trim());
            t.Add("Containers", d.Containers.ToString(), "0", Human.Size(d.ContainersSize), Human.Size(0));
            t.Add("Local Volumes", d.Volumes.ToString(), "0", Human.Size(d.VolumesSize), Human.Size(0));
            Console.Out.Write(t.ToString());
            if (d.UnreferencedSize > 0) Console.Out.WriteLine($"\nContent no image references: {Human.Size(d.UnreferencedSize)} (freed by 'vessel system prune')");
            if (d.Note is not null) Console.Out.WriteLine($"Note: {d.Note}");
            if (!pr.GetValue(verbose)) return 0;
            Console.Out.WriteLine("\nImages space usage:\n");
            var it = new Table("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS");
            DateTimeOffset now = DateTimeOffset.UtcNow;
            foreach (ImageDiskUsage i in d.Images)
                foreach (string n in i.Names.DefaultIfEmpty("<none>"))
                {
                    bool id = n.StartsWith("sha256:", StringComparison.Ordinal);
                    it.Add(id ? "<none>" : RepoOf(n), id || n.Contains('@') ? "<none>" : TagOf(n), Human.ShortId(i.Id), Human.Ago(i.Created, now),
                        Human.Size(i.Size), Human.Size(i.SharedSize), Human.Size(i.UniqueSize), i.Containers.ToString());
                }
            Console.Out.Write(it.ToString());
            Console.Out.WriteLine($"\nContent store: {d.BlobCount} blobs, {Human.Size(d.BlobsSize)}; unpacked layers: {d.SnapshotCount}, {Human.Size(d.SnapshotsSize)}");
            return 0;
        });
        return cmd;
    }
}

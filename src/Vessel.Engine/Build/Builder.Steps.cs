using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine.Containers;
using Vessel.Images.Build;
using Vessel.Images.Build.Containerfile;
using Vessel.Images.Content;
using Vessel.Images.Diff;
using Vessel.Images.Gc;
using Vessel.Images.Layers;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Build;

internal sealed partial class Builder
{
    // ---- RUN ---------------------------------------------------------------------------------------------

    private void RunStep(State st, RunInstruction run)
    {
        st.K++;
        // A RUN that is just a here-document starting with #! runs it as a script file, as BuildKit does.
        Heredoc? script = run.Command.Exec is null && IsOnlyHeredoc(run) && run.Heredocs[0].Content.StartsWith("#!", StringComparison.Ordinal)
            ? run.Heredocs[0] : null;
        IReadOnlyList<string> argv = run.Command.Exec ?? (script is not null ? [ScriptDir + script.Name] : [.. st.Shell, ShellScript(run)]);
        string user = st.Runtime.User ?? "";
        string workdir = string.IsNullOrEmpty(st.Runtime.WorkingDir) ? "/" : st.Runtime.WorkingDir!;
        string network = run.Network ?? "default";
        // ARGs in scope are in RUN's environment (not in the image), ENV wins over an ARG of the same name.
        var env = (st.Runtime.Env ?? []).ToList();
        var argEnv = new List<string>();
        foreach (var (k, v) in st.Args)
            if (v is not null && !env.Any(e => e.StartsWith(k + "=", StringComparison.Ordinal))) argEnv.Add($"{k}={v}");
        var predefined = _args.PredefinedGiven().Where(p => !st.Args.ContainsKey(p.Key)).Select(p => $"{p.Key}={p.Value}").ToList();
        string display = run.Command.IsExec ? Json(argv) : run.Command.Shell!;
        string createdBy = "RUN " + (argEnv.Count > 0 ? $"|{argEnv.Count} {string.Join(' ', argEnv)} " : "") + string.Join(' ', argv);
        string key = Hash(st.Key, "run", Json(argv), Json(env), Json(argEnv), user, workdir, network, script?.Content ?? "");
        int no = Begin($"[{st.Label}{st.K}/{st.N}] RUN {OneLine(display)}");
        LayerStep(st, no, key, createdBy, (dir, rootfs, sw) =>
            ExecuteRun(no, dir, rootfs, argv, [.. env, .. argEnv, .. predefined], user, workdir, network, display, script, sw));
    }

    /// <summary>Where a #! here-document is mounted (read-only) for RUN to execute, as in BuildKit.</summary>
    private const string ScriptDir = "/dev/pipes/";

    private static bool IsOnlyHeredoc(RunInstruction run) =>
        run.Heredocs.Count == 1 && System.Text.RegularExpressions.Regex.IsMatch(run.Command.Shell!.Trim(),
            @"^<<-?[""']?" + System.Text.RegularExpressions.Regex.Escape(run.Heredocs[0].Name) + @"[""']?$");

    /// <summary>The shell form's script. A RUN that is just a here-document runs the document; other
    /// here-documents are handed to the shell with the command (the shell reads them itself).</summary>
    private static string ShellScript(RunInstruction run)
    {
        string cmd = run.Command.Shell!;
        if (run.Heredocs.Count == 0) return cmd;
        if (IsOnlyHeredoc(run)) return run.Heredocs[0].Content;
        var sb = new StringBuilder(cmd).Append('\n');
        foreach (Heredoc h in run.Heredocs) sb.Append(h.Content).Append(h.Name).Append('\n');
        return sb.ToString();
    }

    private static string OneLine(string s)
    {
        string t = s.ReplaceLineEndings(" ");
        return t.Length > 200 ? t[..200] + "…" : t;
    }

    private void ExecuteRun(int no, string dir, string rootfs, IReadOnlyList<string> argv, List<string> env, string user, string workdir,
        string network, string display, Heredoc? script, Stopwatch sw)
    {
        InRoot.MkdirAll(rootfs, workdir, 0, 0);
        string[] mountPoints = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];
        var missing = mountPoints.Where(p => !Exists(InRoot.Resolve(rootfs, p, followLast: false))).ToList();
        // The runtime copies /etc up (or makes it) to hold those stubs: remember how the lower layers have it.
        string upperDir = Path.Combine(dir, "upper");
        var stubDirs = missing.Select(ParentOf).Distinct()
            .Where(d => new FileInfo(rootfs + d).LinkTarget is null && !Exists(upperDir + d))
            .Select(d => (Dir: d, Mode: Directory.Exists(rootfs + d) ? File.GetUnixFileMode(rootfs + d) : (UnixFileMode?)null)).ToList();
        string id = $"build-{_buildId[..12]}-{++_runs}";
        string hostname = "vessel-build";
        var req = new ContainerCreateRequest { Image = "", Cmd = [.. argv], Entrypoint = [], Env = env, User = user, WorkingDir = workdir };
        RuntimeSpec spec;
        // RUN joins the default bridge (like BuildKit's default) when the engine has networks, else — and with
        // --network=host — the host's network namespace; --network=none: a namespace with only loopback (which
        // the network service brings up, as for `run --network none`).
        var networks = _svc.Networks;
        bool bridge = network == "default" && networks is not null;
        bool none = network == "none" && networks is not null;
        bool host = network == "host" || (network == "default" && networks is null);
        bool prepared = false;
        try
        {
            File.WriteAllText(Path.Combine(dir, "hostname"), hostname + "\n");
            string hosts = ContainerSpec.Hosts(hostname);
            string resolvText = File.Exists("/etc/resolv.conf") ? File.ReadAllText("/etc/resolv.conf") : "";
            if (bridge || none)
            {
                var plan = networks!.Prepare(id, id, hostname, req with { NetworkMode = bridge ? "bridge" : "none" }, [],
                    n => throw EngineException.Invalid("a build step cannot share another container's network"));
                prepared = true;
                hosts = plan.Hosts;
                resolvText = plan.ResolvConf;
            }
            File.WriteAllText(Path.Combine(dir, "hosts"), hosts);
            spec = ContainerSpec.Build(id, req, new ContainerConfig(), hostname, dir, ReadSmall(rootfs, "/etc/passwd"), ReadSmall(rootfs, "/etc/group"),
                host ? "host" : null);
            // resolv.conf: the network's (bridge), the host's (host), none with --network=none.
            string resolv = Path.Combine(dir, "resolv.conf");
            File.WriteAllText(resolv, bridge || host ? resolvText : "");
            if (!spec.Mounts!.Any(m => m.Destination == "/etc/resolv.conf"))
                spec.Mounts!.Add(new MountSpec { Destination = "/etc/resolv.conf", Type = "bind", Source = resolv, Options = ["rbind", "rprivate"] });
            if (script is not null)
            {
                string file = Path.Combine(dir, "script");
                File.WriteAllText(file, script.Content);
                File.SetUnixFileMode(file, (UnixFileMode)0x1ed);
                spec.Mounts!.Add(new MountSpec { Destination = ScriptDir + script.Name, Type = "bind", Source = file, Options = ["rbind", "ro", "rprivate"] });
            }
        }
        catch (EngineException e)
        {
            if (prepared) networks!.Release(id);
            throw new BuildException($"RUN {display}: {e.Message}");
        }
        try
        {
            ExecuteContainer(no, dir, id, spec, string.Join(' ', argv), sw, prepared ? networks : null);
        }
        finally
        {
            if (prepared) networks!.Release(id);
        }
        // The runtime made mount points for /etc/hosts and friends where the image had none: not part of the step.
        foreach (string p in missing)
        {
            string upper = Path.Combine(dir, "upper") + p;
            var fi = new FileInfo(upper);
            if (fi.Exists && fi.Length == 0 && fi.LinkTarget is null) fi.Delete();
        }
        // …and the directory that held them, when the step left it empty and as it was (but for its mtime): else
        // every RUN would add a layer with just etc/ in it, where BuildKit adds none.
        foreach (var (d, mode) in stubDirs)
        {
            string up = upperDir + d;
            if (!Directory.Exists(up) || new DirectoryInfo(up).LinkTarget is not null) continue;
            if (Directory.EnumerateFileSystemEntries(up).Any() || InRoot.IsOpaque(up)) continue;
            if (mode is null || mode == File.GetUnixFileMode(up)) Directory.Delete(up);
        }
    }

    private void ExecuteContainer(int no, string dir, string id, RuntimeSpec spec, string display, Stopwatch sw, Vessel.Engine.Networks.NetworkService? networks)
    {
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(spec, RuntimeJson.Indented.RuntimeSpec));

        var (outR, outW) = SafeFd.Pipe();
        using var devNull = SafeFd.Open("/dev/null", 0);
        ContainerRuntime runtime = _svc.Runtime;
        int pid;
        try
        {
            try { pid = runtime.Create(new CreateOptions(id, dir, Stdio: [devNull, outW, outW])); }
            finally { outW.Dispose(); }
        }
        catch (RuntimeException e)
        {
            outR.Dispose();
            throw new BuildException($"process {Quote(display)} could not start: {e.Message}");
        }
        try { networks?.Started(id, pid); }
        catch (EngineException e)
        {
            outR.Dispose();
            try { runtime.Delete(id, force: true); } catch (Exception) { }
            throw new BuildException($"RUN {OneLine(display)}: {e.Message}");
        }
        int code;
        try
        {
            using CancellationTokenRegistration reg = _ct.Register(() =>
            {
                try { runtime.Kill(id, Signals.SIGKILL, all: true); } catch (Exception) { }
            });
            var reader = Task.Run(() => Pump(outR, no, sw));
            runtime.Start(id);
            code = Processes.WaitExit(pid);
            reader.Wait(TimeSpan.FromSeconds(10));
        }
        finally
        {
            try { runtime.Delete(id, force: true); }
            catch (Exception e) when (e is RuntimeException or IOException) { _svc.Log($"build {_buildId}: delete {id}: {e.Message}"); }
            outR.Dispose();
        }
        _ct.ThrowIfCancellationRequested();
        if (code != 0) throw new BuildException($"process {Quote(display)} did not complete successfully: exit code: {code}");
    }

    /// <summary>The whole command line quoted as Go's %q, as BuildKit names a failed process
    /// (<c>process "/bin/sh -c echo \"hi\"; exit 3" did not complete successfully</c>).</summary>
    internal static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s)
            sb.Append(c switch
            {
                '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", '\t' => "\\t", '\r' => "\\r",
                < ' ' or '\x7f' => "\\x" + ((int)c).ToString("x2", CultureInfo.InvariantCulture),
                _ => c.ToString(),
            });
        return sb.Append('"').ToString();
    }

    private void Pump(SafeFd fd, int no, Stopwatch sw)
    {
        using var fs = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd.DangerousGetHandle(), ownsHandle: false), FileAccess.Read, 1);
        using var reader = new StreamReader(fs, Encoding.UTF8);
        try
        {
            string? line;
            while ((line = reader.ReadLine()) is not null)
                _progress(new BuildEvent("log", no, line, At: sw.Elapsed));
        }
        catch (IOException) { }
    }

    private static bool Exists(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    private static string? ReadSmall(string rootfs, string path)
    {
        string host = InRoot.Resolve(rootfs, path, followLast: true);
        try { return File.Exists(host) && new FileInfo(host).Length < 4 * 1024 * 1024 ? File.ReadAllText(host) : null; }
        catch (IOException) { return null; }
    }

    // ---- WORKDIR -----------------------------------------------------------------------------------------

    /// <summary>WORKDIR sets the working directory and, as BuildKit, makes it (mkdir -p, 0755, owned by the USER in
    /// effect) in a step of its own, so the image has it even when no RUN follows; a directory that is already
    /// there adds no layer.</summary>
    private void WorkdirStep(State st, ValueInstruction wd)
    {
        st.K++;
        string dir = Expand(st, wd.Value, wd.Pos);
        string cur = string.IsNullOrEmpty(st.Runtime.WorkingDir) ? "/" : st.Runtime.WorkingDir!;
        dir = IgnoreRules.Clean(dir.StartsWith('/') ? dir : cur.TrimEnd('/') + "/" + dir);
        st.SetRuntime(c => c with { WorkingDir = dir });
        string user = st.Runtime.User ?? "";
        string key = Hash(st.Key, "workdir", dir, user);
        int no = Begin($"[{st.Label}{st.K}/{st.N}] WORKDIR {dir}");
        LayerStep(st, no, key, "WORKDIR " + dir, (_, rootfs, _) =>
        {
            uint uid = 0, gid = 0;
            if (user.Length > 0)
            {
                try { (uid, gid, _) = ContainerSpec.ResolveUser(user, ReadSmall(rootfs, "/etc/passwd"), ReadSmall(rootfs, "/etc/group")); }
                catch (EngineException e) { throw new ContainerfileException(wd.Pos, $"WORKDIR {dir}: USER {user}: {e.Message}"); }
            }
            InRoot.MkdirAll(rootfs, dir, uid, gid);
        });
    }

    // ---- the layer of a step -----------------------------------------------------------------------------

    /// <summary>A cached step, or: mount the parent's snapshots with a fresh upper, do the work, turn the upper
    /// into a layer and a snapshot, record it in the cache.</summary>
    private void LayerStep(State st, int no, string key, string createdBy, Action<string, string, Stopwatch> work)
    {
        if (!_o.NoCache && _svc.Cache.Get(key) is BuildCacheRecord hit && (hit.Layer is null || hit.Snapshot is null || KeepCached(hit)))
        {
            Apply(st, key, hit);
            _records.Add(hit);
            Finish(no, cached: true);
            return;
        }
        var sw = Stopwatch.StartNew();
        string dir = Path.Combine(_work, $"step-{no}");
        string rootfs = Path.Combine(dir, "rootfs"), upper = Path.Combine(dir, "upper");
        foreach (string d in new[] { "upper", "work", "rootfs", "empty" }) Directory.CreateDirectory(Path.Combine(dir, d), (UnixFileMode)0x1ed);
        var lowers = Snapshots(st);
        if (lowers.Count == 0) lowers = [Path.Combine(dir, "empty")];
        BuildCacheRecord rec;
        bool mounted = false;
        try
        {
            string options = OverlayMount.BuildOptions(lowers, upper, Path.Combine(dir, "work"));
            // A layer cannot express redirects or metacopy: renamed lower dirs are copied up instead.
            Mounts.Mount("overlay", rootfs, "overlay", 0, options + ",redirect_dir=off,metacopy=off");
            mounted = true;
            work(dir, rootfs, sw);
            Unmount(rootfs);
            mounted = false;
            DateTimeOffset now = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            if (!Directory.EnumerateFileSystemEntries(upper).Any())
                rec = new BuildCacheRecord { Key = key, Created = now, CreatedBy = createdBy };
            else
            {
                using StoreLock storeLock = StoreLock.Shared(_svc.Content.Root);
                LayerDiffResult layer = LayerDiff.Create(upper, _svc.Content, System.IO.Compression.CompressionLevel.Fastest);
                var chain = SnapshotStore.ChainIds([.. st.DiffIds, layer.DiffId]);
                Digest? parent = chain.Count > 1 ? chain[^2] : null;
                _svc.Snapshots.Adopt(upper, chain[^1], layer.DiffId, layer.Descriptor, parent);
                _svc.Leases.Add(_svc.LeaseId(_buildId), [layer.Digest], [chain[^1]]);
                rec = new BuildCacheRecord { Key = key, Layer = layer.Descriptor, DiffId = layer.DiffId, Snapshot = chain[^1], Created = now, CreatedBy = createdBy };
            }
            _svc.Cache.Put(rec);
        }
        catch (Exception e) when (e is LinuxException or LayerDiffException or ArgumentException)
        {
            throw new BuildException($"{createdBy}: {e.Message}");
        }
        finally
        {
            if (mounted) Unmount(rootfs);
            RemoveDir(dir);
        }
        Apply(st, key, rec);
        _records.Add(rec);
        Finish(no, sw);
    }

    /// <summary>A cache hit keeps its layer and snapshot for the rest of the build (the lease).</summary>
    private bool KeepCached(BuildCacheRecord hit)
    {
        try
        {
            _svc.Leases.Add(_svc.LeaseId(_buildId), [hit.Layer!.Digest], _svc.Snapshots.IsComplete(hit.Snapshot!.Value) ? [hit.Snapshot.Value] : []);
            return true;
        }
        catch (ContentException) { return false; }
    }

    private static void Apply(State st, string key, BuildCacheRecord rec)
    {
        if (rec.Layer is Descriptor l)
        {
            st.Layers.Add(l);
            st.DiffIds.Add(rec.DiffId!.Value);
        }
        st.History.Add(new History { Created = rec.Created, CreatedBy = rec.CreatedBy, EmptyLayer = rec.Layer is null ? true : null, Comment = "vessel build" });
        st.LastCreated = rec.Created;
        st.Key = key;
    }

    /// <summary>The snapshot dirs of the state's layers, bottom first, unpacking any that are missing.</summary>
    private List<string> Snapshots(State st)
    {
        if (st.DiffIds.Count == 0) return [];
        var manifest = new ImageManifest { Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Compute([]), Size = 0 }, Layers = st.Layers };
        var image = new ResolvedImage("build", manifest.Config, manifest.Config, manifest, st.Config with { RootFs = new RootFs { Type = "layers", DiffIds = st.DiffIds } });
        try { return [.. _svc.Snapshots.Unpack(_svc.Content, image)]; }
        catch (Exception e) when (e is ContentException or LayerException) { throw new BuildException(e.Message); }
    }

    internal static void Unmount(string path)
    {
        if (!Mounts.MountPoints().Contains(path)) return;
        if (!Mounts.Unmount(path)) Mounts.Unmount(path, detach: true);
    }

    internal static void RemoveDir(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    // ---- COPY / ADD --------------------------------------------------------------------------------------

    private sealed record Source(string Rel, string Host, bool IsDir, string? Content = null);

    private void CopyStep(State st, CopyInstruction copy)
    {
        st.K++;
        string kw = copy.Keyword;
        var srcs = new List<string>();
        foreach (string raw in copy.Sources)
            srcs.Add(raw.StartsWith("<<", StringComparison.Ordinal) ? raw : Expand(st, raw, copy.Pos));
        string dest = Expand(st, copy.Dest, copy.Pos);
        string? chown = copy.Chown is null ? null : Expand(st, copy.Chown, copy.Pos);
        string? chmodText = copy.Chmod is null ? null : Expand(st, copy.Chmod, copy.Pos);
        UnixFileMode? chmod = null;
        if (chmodText is not null)
        {
            try { chmod = (UnixFileMode)Convert.ToInt32(chmodText, 8); }
            catch (FormatException) { throw new ContainerfileException(copy.Pos, $"--chmod={chmodText}: expected an octal mode such as 0755"); }
            if ((int)chmod > 0xfff) throw new ContainerfileException(copy.Pos, $"--chmod={chmodText}: expected an octal mode such as 0755");
        }
        if (copy.Checksum is not null) throw new ContainerfileException(copy.Pos, "ADD --checksum is only for URLs, which Vessel's builder does not fetch");
        foreach (string s in srcs)
            if (copy.IsAdd && (s.Contains("://", StringComparison.Ordinal) || s.StartsWith("git@", StringComparison.Ordinal)))
                throw new ContainerfileException(copy.Pos, $"ADD {s}: sources from URLs or git are not supported by Vessel's builder; download them with RUN (curl, git) or into the context");
        string workdir = string.IsNullOrEmpty(st.Runtime.WorkingDir) ? "/" : st.Runtime.WorkingDir!;
        string destAbs = dest.StartsWith('/') ? dest : workdir.TrimEnd('/') + "/" + dest;
        bool destDir = dest.EndsWith('/') || dest is "." or ".." || dest.EndsWith("/.", StringComparison.Ordinal);

        // Where the files come from: the context, an earlier stage or an image.
        string? from = copy.From is null ? null : Expand(st, copy.From, copy.Pos);
        State? fromStage = null;
        ResolvedImage? fromImage = null;
        string fromId = "context";
        if (from is not null)
        {
            if (StageRef(from, st.Index) is Stage s) { fromStage = _done[s.Index]; fromId = "stage:" + string.Join(',', fromStage.DiffIds); }
            else if (_file.FindStage(from) is not null) throw new ContainerfileException(copy.Pos, $"--from={from}: a stage can only copy from an earlier stage");
            else
            {
                int pullStep = 0;
                var pullClock = Stopwatch.StartNew();
                (fromImage, _) = _svc.ResolveBase(_buildId, from, false, copy.Pos, _ct, () => pullStep = Begin($"[internal] pull {from}"));
                if (pullStep > 0) _progress(new BuildEvent("done", pullStep, Elapsed: pullClock.Elapsed));
                fromId = "image:" + fromImage.ManifestDescriptor.Digest;
                _svc.Leases.Add(_svc.LeaseId(_buildId), [fromImage.ManifestDescriptor.Digest]);
            }
        }
        string flags = (from is null ? "" : $"--from={from} ") + (chown is null ? "" : $"--chown={chown} ") + (chmodText is null ? "" : $"--chmod={chmodText} ");
        int no = Begin($"[{st.Label}{st.K}/{st.N}] {kw} {flags}{string.Join(' ', srcs)} {dest}");
        string viewDir = Path.Combine(_work, $"from-{no}");
        bool viewMounted = false;
        try
        {
            string sourceRoot = _contextDir;
            if (fromStage is not null || fromImage is not null)
            {
                var lowers = fromStage is not null ? Snapshots(fromStage) : [.. _svc.Snapshots.Unpack(_svc.Content, fromImage!)];
                Directory.CreateDirectory(viewDir);
                if (lowers.Count == 0) sourceRoot = viewDir;
                else if (lowers.Count == 1) sourceRoot = lowers[0];
                else
                {
                    sourceRoot = Path.Combine(viewDir, "rootfs");
                    Directory.CreateDirectory(sourceRoot);
                    Mounts.Mount("overlay", sourceRoot, "overlay", Mounts.MS_RDONLY, OverlayMount.BuildOptions(lowers, null, null));
                    viewMounted = true;
                }
            }
            bool fromContext = from is null;
            var sources = new List<Source>();
            bool wildcard = false;
            foreach (string s in srcs)
            {
                if (s.StartsWith("<<", StringComparison.Ordinal))
                {
                    string name = s.TrimStart('<', '-').Trim('"', '\'');
                    Heredoc h = copy.Heredocs.FirstOrDefault(x => x.Name == name)
                        ?? throw new ContainerfileException(copy.Pos, $"here-document {name} not found");
                    string content = h.Expand ? ExpandHeredoc(st, h.Content, copy.Pos) : h.Content;
                    sources.Add(new Source(name, "", false, content));
                    continue;
                }
                if (s.IndexOfAny(['*', '?', '[']) >= 0) wildcard = true;
                sources.AddRange(Resolve(sourceRoot, s, fromContext, copy.Pos));
            }
            if (sources.Count > 1 || wildcard) destDir = destDir || sources.Count > 1;
            if (sources.Count > 1 && !dest.EndsWith('/') && !destDir)
                throw new ContainerfileException(copy.Pos, $"When using {kw} with more than one source file, the destination must be a directory and end with a /");
            string contentHash = HashSources(sources, fromContext);
            string createdBy = $"{kw} {(chown is null ? "" : $"--chown={chown} ")}{(chmodText is null ? "" : $"--chmod={chmodText} ")}{string.Join(' ', srcs)} {dest}";
            string key = Hash(st.Key, kw, fromId, Json(srcs), destAbs, destDir ? "dir" : "path", chown ?? "", chmodText ?? "", contentHash);
            LayerStep(st, no, key, createdBy, (dir, rootfs, sw) =>
            {
                uint uid = 0, gid = 0;
                if (chown is not null)
                {
                    try { (uid, gid, _) = ContainerSpec.ResolveUser(chown, ReadSmall(rootfs, "/etc/passwd"), ReadSmall(rootfs, "/etc/group")); }
                    catch (EngineException e) { throw new ContainerfileException(copy.Pos, $"--chown={chown}: {e.Message}"); }
                }
                foreach (Source src in sources) CopyInto(rootfs, src, destAbs, destDir, uid, gid, chown is not null, chmod, copy.IsAdd && fromContext, fromContext);
            });
        }
        finally
        {
            if (viewMounted) Unmount(Path.Combine(viewDir, "rootfs"));
            RemoveDir(viewDir);
        }
    }

    private string ExpandHeredoc(State st, string content, SourcePos pos)
    {
        // Only $VAR / ${VAR} expand in an unquoted here-document; quotes are text.
        var sb = new StringBuilder();
        var lookup = Lookup(st);
        var m = System.Text.RegularExpressions.Regex.Replace(content, @"\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))",
            x => lookup(x.Groups[2].Success ? x.Groups[2].Value : x.Groups[3].Value) ?? "");
        _ = pos;
        return sb.Append(m).ToString();
    }

    /// <summary>The sources a COPY names: paths inside the source root (symlinks resolved inside it), with
    /// wildcards; a path outside the context or excluded by .dockerignore is an error.</summary>
    private List<Source> Resolve(string root, string src, bool fromContext, SourcePos pos)
    {
        string rel = IgnoreRules.Clean(src.TrimStart('/'));
        if (rel == ".." || rel.StartsWith("../", StringComparison.Ordinal))
            throw new ContainerfileException(pos, $"{src}: forbidden path outside the build context");
        var result = new List<Source>();
        if (rel.IndexOfAny(['*', '?', '[']) < 0)
        {
            string host = InRoot.Resolve(root, "/" + rel, followLast: true);
            if ((fromContext && rel != "." && _ignore.IsIgnored(rel)) || !Exists(host))
                throw new ContainerfileException(pos, $"{src}: not found{(fromContext ? " in the build context (or excluded by .dockerignore)" : "")}");
            result.Add(new Source(rel == "." ? "" : rel, host, Directory.Exists(host)));
            return result;
        }
        // Wildcards: match component by component (Go's filepath.Match: '*' and '?' never match '/').
        var current = new List<string> { "" };
        foreach (string part in rel.Split('/'))
        {
            var next = new List<string>();
            foreach (string prefix in current)
            {
                string dirHost = InRoot.Resolve(root, "/" + prefix, followLast: true);
                if (part.IndexOfAny(['*', '?', '[']) < 0)
                {
                    string cand = prefix.Length == 0 ? part : prefix + "/" + part;
                    if (Exists(InRoot.Resolve(root, "/" + cand, followLast: false))) next.Add(cand);
                    continue;
                }
                if (!Directory.Exists(dirHost)) continue;
                var re = GlobRegex(part);
                foreach (string e in Directory.EnumerateFileSystemEntries(dirHost).Select(Path.GetFileName).Order(StringComparer.Ordinal)!)
                    if (re.IsMatch(e!)) next.Add(prefix.Length == 0 ? e! : prefix + "/" + e);
            }
            current = next;
        }
        foreach (string m in current)
        {
            if (fromContext && _ignore.IsIgnored(m)) continue;
            string host = InRoot.Resolve(root, "/" + m, followLast: true);
            result.Add(new Source(m, host, Directory.Exists(host)));
        }
        if (result.Count == 0) throw new ContainerfileException(pos, $"{src}: no source files were specified (nothing matches)");
        return result;
    }

    private static System.Text.RegularExpressions.Regex GlobRegex(string part)
    {
        var sb = new StringBuilder("^");
        for (int i = 0; i < part.Length; i++)
        {
            char c = part[i];
            if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else if (c == '[')
            {
                int end = part.IndexOf(']', i + 1);
                if (end < 0) { sb.Append("\\["); continue; }
                string cls = part[(i + 1)..end];
                if (cls.StartsWith('^') || cls.StartsWith('!')) cls = "^" + cls[1..];
                sb.Append('[').Append(cls).Append(']');
                i = end;
            }
            else if (c == '\\' && i + 1 < part.Length) sb.Append(System.Text.RegularExpressions.Regex.Escape(part[++i].ToString()));
            else sb.Append(System.Text.RegularExpressions.Regex.Escape(c.ToString()));
        }
        return new System.Text.RegularExpressions.Regex(sb.Append('$').ToString());
    }

    /// <summary>Every file a source brings (directories walked in name order), skipping what .dockerignore excludes.</summary>
    private IEnumerable<(string Rel, string Host, string Ctx)> Walk(Source src, bool fromContext)
    {
        if (!src.IsDir) { yield return ("", src.Host, src.Rel); yield break; }
        var stack = new Stack<(string Host, string Rel)>();
        stack.Push((src.Host, ""));
        while (stack.Count > 0)
        {
            var (dir, rel) = stack.Pop();
            var entries = Directory.EnumerateFileSystemEntries(dir).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToList();
            var dirs = new List<(string, string)>();
            foreach (string name in entries)
            {
                string r = rel.Length == 0 ? name : rel + "/" + name;
                string ctx = src.Rel.Length == 0 ? r : src.Rel + "/" + r;
                string host = Path.Combine(dir, name);
                bool isDir = Directory.Exists(host) && new FileInfo(host).LinkTarget is null;
                if (fromContext && _ignore.IsIgnored(ctx) && !(isDir && _ignore.HasExclusions)) continue;
                if (isDir) dirs.Add((host, r));
                if (!(fromContext && _ignore.IsIgnored(ctx))) yield return (r, host, ctx);
            }
            for (int i = dirs.Count - 1; i >= 0; i--) stack.Push(dirs[i]);
        }
    }

    private string HashSources(List<Source> sources, bool fromContext)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) { h.AppendData(Encoding.UTF8.GetBytes(s)); h.AppendData([0]); }
        foreach (Source src in sources)
        {
            Add("source:" + src.Rel);
            if (src.Content is not null) { Add("heredoc"); Add(src.Content); continue; }
            foreach (var (rel, host, _) in Walk(src, fromContext))
            {
                var fi = new FileInfo(host);
                Add(rel);
                if (fi.LinkTarget is string target) { Add("link:" + target); continue; }
                if (Directory.Exists(host)) { Add("dir:" + ((int)File.GetUnixFileMode(host)).ToString(CultureInfo.InvariantCulture)); continue; }
                if (!fi.Exists) continue;
                Add("file:" + ((int)File.GetUnixFileMode(host)).ToString(CultureInfo.InvariantCulture) + ":" + fi.Length.ToString(CultureInfo.InvariantCulture));
                using var f = new FileStream(host, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                Add(Convert.ToHexStringLower(SHA256.HashData(f)));
            }
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>Copies one source into the rootfs: a directory's contents into the destination directory, a file
    /// to the destination (or into it when it is a directory); ADD extracts local tar archives.</summary>
    private void CopyInto(string rootfs, Source src, string destAbs, bool destDir, uint uid, uint gid, bool chowned, UnixFileMode? chmod, bool add, bool fromContext)
    {
        if (src.Content is not null)
        {
            string target = destDir || Directory.Exists(InRoot.Resolve(rootfs, destAbs, true)) ? destAbs.TrimEnd('/') + "/" + src.Rel : destAbs;
            string parent = InRoot.MkdirAll(rootfs, ParentOf(target), uid, gid);
            string host = Path.Combine(parent, NameOf(target));
            ReplaceNonDir(host);
            File.WriteAllText(host, src.Content);
            File.SetUnixFileMode(host, chmod ?? (UnixFileMode)0x1a4);
            InRoot.Chown(host, uid, gid);
            return;
        }
        if (src.IsDir)
        {
            string top = InRoot.MkdirAll(rootfs, destAbs, uid, gid);
            foreach (var (rel, host, _) in Walk(src, fromContext))
            {
                string dst = destAbs.TrimEnd('/') + "/" + rel;
                CopyEntry(rootfs, host, dst, uid, gid, chmod);
            }
            _ = top;
            return;
        }
        if (add && AddArchive.IsArchive(src.Host, src.Rel))
        {
            string dir = InRoot.MkdirAll(rootfs, destAbs, uid, gid);
            try
            {
                Action done;
                using (var f = AddArchive.OpenTar(src.Host, src.Rel, out done))
                    LayerExtractor.Extract(f, dir, "ADD " + src.Rel, null, new ExtractionOptions { Whiteouts = WhiteoutMode.Apply });
                done();
                // --chown applies to the archive's entries too, as BuildKit (since v0.23) does.
                if (chowned)
                {
                    foreach (string name in AddArchive.EntryNames(src.Host, src.Rel))
                    {
                        string host = InRoot.Resolve(rootfs, name.Length == 0 ? destAbs : destAbs.TrimEnd('/') + "/" + name, followLast: false);
                        if (Exists(host)) InRoot.Chown(host, uid, gid);
                    }
                }
            }
            catch (LayerException e) { throw new BuildException($"ADD {src.Rel}: {e.Message}"); }
            return;
        }
        string file = destDir || Directory.Exists(InRoot.Resolve(rootfs, destAbs, true)) ? destAbs.TrimEnd('/') + "/" + NameOf(src.Rel.Length == 0 ? src.Host : src.Rel) : destAbs;
        CopyEntry(rootfs, src.Host, file, uid, gid, chmod);
    }

    private static string ParentOf(string p) { int i = p.TrimEnd('/').LastIndexOf('/'); return i <= 0 ? "/" : p[..i]; }
    private static string NameOf(string p) => p.TrimEnd('/')[(p.TrimEnd('/').LastIndexOf('/') + 1)..];

    private static void ReplaceNonDir(string host)
    {
        var fi = new FileInfo(host);
        if (fi.LinkTarget is not null || fi.Exists) fi.Delete();
        else if (Directory.Exists(host)) throw new BuildException($"cannot replace directory {host} with a file");
    }

    private static void CopyEntry(string rootfs, string srcHost, string dst, uint uid, uint gid, UnixFileMode? chmod)
    {
        var fi = new FileInfo(srcHost);
        string parent = InRoot.MkdirAll(rootfs, ParentOf(dst), uid, gid);
        string host = Path.Combine(parent, NameOf(dst));
        if (fi.LinkTarget is string target)
        {
            ReplaceNonDir(host);
            File.CreateSymbolicLink(host, target);
            InRoot.Chown(host, uid, gid);
            return;
        }
        if (Directory.Exists(srcHost))
        {
            var existing = new FileInfo(host);
            if (existing.LinkTarget is not null || existing.Exists) existing.Delete();
            if (!Directory.Exists(host))
            {
                Directory.CreateDirectory(host);
                File.SetUnixFileMode(host, chmod ?? File.GetUnixFileMode(srcHost));
                InRoot.Chown(host, uid, gid);
                Directory.SetLastWriteTimeUtc(host, Directory.GetLastWriteTimeUtc(srcHost));
            }
            return;
        }
        if (!fi.Exists) return; // sockets, fifos, devices: not copied
        ReplaceNonDir(host);
        using (var input = new FileStream(srcHost, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
        using (var output = new FileStream(host, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1))
            input.CopyTo(output, 1 << 20);
        InRoot.Chown(host, uid, gid);
        File.SetUnixFileMode(host, chmod ?? File.GetUnixFileMode(srcHost));
        File.SetLastWriteTimeUtc(host, fi.LastWriteTimeUtc);
    }
}

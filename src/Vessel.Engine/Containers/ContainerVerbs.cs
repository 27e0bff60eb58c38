using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
using Vessel.Api;
using Vessel.Engine.Images;
using Vessel.Images.Archive;
using Vessel.Images.Build;
using Vessel.Images.Content;
using Vessel.Images.Diff;
using Vessel.Images.Gc;
using Vessel.Images.Layers;
using Vessel.Images.Oci;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Cgroups;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>The verbs around a container's life (docs/containers.md): pause/unpause, rename, update, top, stats,
/// diff, commit and the archive (cp) endpoints.</summary>
public sealed partial class ContainerService
{
    /// <summary>Creates a container. A generated name can be taken by a concurrent create between the check and the
    /// insert (50 `run` at once drew the same of the 225 names): then it is created again under another name.</summary>
    public ContainerCreateResponse Create(ContainerCreateRequest req)
    {
        for (int attempt = 0; ; attempt++)
        {
            try { return CreateOnce(req); }
            catch (EngineException e) when (e.Code == ErrorCodes.Conflict && string.IsNullOrEmpty(req.Name) && attempt < 10) { }
        }
    }

    // ---- waking up on exits and state changes -------------------------------------------------------------

    private ExitWatcher? _exitWatcher;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Has the monitor's exit wake the watcher loop at once (a pidfd in <see cref="ExitWatcher"/>).</summary>
    private void WatchMonitor(int pid) =>
        LazyInitializer.EnsureInitialized(ref _exitWatcher, () => new ExitWatcher(WakeWatcher)).Watch(pid);

    private void WakeWatcher() => Interlocked.Exchange(ref _wake, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>The watcher loop's sleep: until a monitor exits, or a second at most (monitors without a pidfd).</summary>
    private async Task WaitWakeAsync(CancellationToken ct)
    {
        Task woken = Volatile.Read(ref _wake).Task;
        await Task.WhenAny(woken, Task.Delay(1000, ct));
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>A container's state was saved: wakes those that wait for one (logs -f, wait).</summary>
    private void NotifyChanged() => Interlocked.Exchange(ref _changed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task WaitChangeAsync(int ms, CancellationToken ct)
    {
        Task changed = Volatile.Read(ref _changed).Task;
        await Task.WhenAny(changed, Task.Delay(ms, ct));
        ct.ThrowIfCancellationRequested();
    }

    private void DisposeWatchers() => _exitWatcher?.Dispose();

    /// <summary>Unmounts a container's overlay without waiting for it: the last reference to an overlayfs mount syncs the
    /// whole upper file system (a journal commit of the host's disk, 15–50 ms here), which a removed container's
    /// files do not need. An O_PATH fd keeps the mount alive across a lazy umount (which then returns at once and
    /// takes the mount out of the tree, so the directory can go); closing that fd on the thread pool pays the sync.</summary>
    private void DetachRootfs(string rootfs)
    {
        SafeFd? hold = null;
        try { hold = SafeFd.OpenPath(rootfs); }
        catch (LinuxException) { }
        try { Mounts.Unmount(rootfs, detach: true); }
        catch
        {
            hold?.Dispose();
            throw;
        }
        if (hold is not null) ThreadPool.UnsafeQueueUserWorkItem(h => h.Dispose(), hold, preferLocal: false);
    }

    // ---- the init layer -----------------------------------------------------------------------------------

    /// <summary>docker's "init layer": the mount points the runtime needs (/etc/hosts, /etc/hostname, /etc/resolv.conf,
    /// /proc, /sys, /dev) as a read-only lower layer of the container's own, so that mounting onto them never copies
    /// anything up: `diff` and `commit` see only what the container changed.</summary>
    private static void CreateInitLayer(string dir)
    {
        string init = Path.Combine(dir, "init");
        foreach (string d in new[] { "etc", "proc", "sys", "dev" }) Directory.CreateDirectory(Path.Combine(init, d), (UnixFileMode)0x1ed);
        foreach (string f in new[] { "etc/hosts", "etc/hostname", "etc/resolv.conf" })
            File.WriteAllBytes(Path.Combine(init, f), []);
    }

    /// <summary>The overlay's lower dirs, bottom first: the image's snapshots, then the init layer when there is one.</summary>
    private IReadOnlyList<string> WithInitLayer(string id, IReadOnlyList<string> lower)
    {
        string init = Path.Combine(DirOf(id), "init");
        return Directory.Exists(init) ? [.. lower, init] : lower;
    }

    private List<string> ImageLayers(ContainerRecord c) => c.Config.Snapshots.Select(s => _snapshots.FsPath(Digest.Parse(s))).ToList();

    // ---- pause / unpause -----------------------------------------------------------------------------------

    public void Pause(string idOrName)
    {
        ContainerRecord c = Get(idOrName);
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id} is not running");
        if (c.State.Paused) throw EngineException.Conflict($"container {c.Id} is already paused");
        try { _runtime.Pause(c.Id); }
        catch (Exception e) when (e is RuntimeException or IOException or CgroupException) { throw EngineException.Conflict($"cannot pause container {c.Id}: {e.Message}"); }
        SetPaused(c.Id, true);
        _events.Publish("container", "pause", c.Id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
    }

    public void Unpause(string idOrName)
    {
        ContainerRecord c = Get(idOrName);
        if (!c.State.Paused || c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id} is not paused");
        try { _runtime.Resume(c.Id); }
        catch (Exception e) when (e is RuntimeException or IOException or CgroupException) { throw EngineException.Conflict($"cannot unpause container {c.Id}: {e.Message}"); }
        SetPaused(c.Id, false);
        _events.Publish("container", "unpause", c.Id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
    }

    /// <summary>Thaws a paused container (stop and kill: a frozen process only acts on its signal once thawed).</summary>
    private void Unfreeze(ContainerRecord c)
    {
        if (!c.State.Paused) return;
        try { _runtime.Resume(c.Id); }
        catch (Exception e) when (e is RuntimeException or IOException or CgroupException) { }
        SetPaused(c.Id, false);
        _events.Publish("container", "unpause", c.Id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
    }

    private void SetPaused(string id, bool paused)
    {
        ContainerRecord? now = Find(id);
        if (now is null || now.State.Status != ContainerStatus.Running) return;
        Save(now with { State = now.State with { Paused = paused } });
    }

    // ---- rename --------------------------------------------------------------------------------------------

    public void Rename(string idOrName, string newName)
    {
        ContainerRecord c = Get(idOrName);
        newName = (newName ?? "").TrimStart('/');
        if (newName.Length == 0) throw EngineException.Invalid("neither old nor new names may be empty");
        if (!NamePattern().IsMatch(newName)) throw EngineException.Invalid($"invalid container name \"{newName}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        if (newName == c.Name) throw EngineException.Invalid("renaming a container with the same name as its current name");
        lock (_lock)
        {
            var other = _all.Values.FirstOrDefault(x => x.Name == newName);
            if (other is not null) throw EngineException.Conflict($"the container name \"{newName}\" is already in use by container \"{other.Id}\"");
        }
        try
        {
            _db.Write((conn, tx) =>
            {
                using SqliteCommand cmd = conn.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "UPDATE containers SET name = $name WHERE id = $id";
                cmd.Parameters.AddWithValue("$id", c.Id);
                cmd.Parameters.AddWithValue("$name", newName);
                return cmd.ExecuteNonQuery();
            });
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19) { throw EngineException.Conflict($"the container name \"{newName}\" is already in use"); }
        lock (_lock) if (_all.TryGetValue(c.Id, out var cur)) _all[c.Id] = cur with { Name = newName };
        _events.Publish("container", "rename", c.Id, newName, new Dictionary<string, string> { ["oldName"] = c.Name, ["image"] = c.Image });
    }

    // ---- update --------------------------------------------------------------------------------------------

    /// <summary>Changes the cgroup limits (and, when given, the restart policy): applied at once to a running container,
    /// kept in the container's record and config.json for its next start.</summary>
    public ContainerUpdateResponse Update(string idOrName, ContainerUpdateRequest u)
    {
        ContainerRecord c = Get(idOrName);
        ContainerCreateRequest old = c.Config.Request;
        static long? Unset(long? v) => v is long x && x <= 0 ? null : v;
        var req = old with
        {
            Memory = u.Memory is long m ? Unset(m) : old.Memory,
            MemorySwap = u.MemorySwap ?? old.MemorySwap,
            Cpus = u.Cpus is double cpus ? (cpus == 0 ? null : cpus) : old.Cpus,
            CpuShares = u.CpuShares is long s ? Unset(s) : old.CpuShares,
            PidsLimit = u.PidsLimit is long p ? Unset(p) : old.PidsLimit,
        };
        if (u.Memory is long mem && req.MemorySwap is long sw && sw > 0 && u.MemorySwap is null && mem > sw)
            throw EngineException.Invalid("memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
        if (!string.IsNullOrEmpty(u.RestartPolicy)) req = WithRestartPolicy(req, u.RestartPolicy);
        LinuxResources wanted = ContainerSpec.Resources(req);
        // What to write now: the new limits, and "unlimited" for the ones this update lifts.
        var apply = new LinuxResources { Memory = wanted.Memory, Cpu = wanted.Cpu, Pids = wanted.Pids };
        if (u.PidsLimit is <= 0) apply.Pids = new LinuxPids { Limit = -1 };
        if (u.Cpus is 0) (apply.Cpu ??= new LinuxCpu()).Quota = -1;
        if (u.Memory is <= 0 && u.Memory is not null) apply.Memory = new LinuxMemory { Limit = -1, Swap = -1 };
        if (c.State.Status == ContainerStatus.Running)
        {
            try { _runtime.Update(c.Id, apply); }
            catch (Exception e) when (e is RuntimeException or IOException or CgroupException or SpecException)
            {
                throw EngineException.Invalid($"cannot update container {c.Id}: {e.Message}");
            }
        }
        string configJson = Path.Combine(DirOf(c.Id), "config.json");
        try
        {
            RuntimeSpec spec = RuntimeJson.ReadSpec(configJson);
            var devices = spec.Linux?.Resources?.Devices;
            wanted.Devices = devices;
            (spec.Linux ??= new LinuxSpec()).Resources = wanted;
            File.WriteAllText(configJson + ".tmp", JsonSerializer.Serialize(spec, RuntimeJson.Indented.RuntimeSpec));
            File.Move(configJson + ".tmp", configJson, overwrite: true);
        }
        catch (Exception e) when (e is IOException or RuntimeException) { _log($"container {c.Id[..12]}: update config.json: {e.Message}"); }
        SaveConfig(c.Id, c.Config with { Request = req });
        _events.Publish("container", "update", c.Id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
        return new ContainerUpdateResponse([]);
    }

    /// <summary>Where `update --restart` records the policy; the policy itself belongs to the restart machinery.</summary>
    private static ContainerCreateRequest WithRestartPolicy(ContainerCreateRequest req, string policy)
    {
        RestartPolicy p = RestartPolicy.Parse(policy);
        if (req.AutoRemove && !p.IsNo) throw EngineException.Invalid("restart policy cannot be updated because AutoRemove is enabled for the container");
        return req with { Restart = p.ToString() };
    }

    private void SaveConfig(string id, ContainerConfigRecord config)
    {
        _db.Write((conn, tx) =>
        {
            using SqliteCommand cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE containers SET config = $config WHERE id = $id";
            cmd.Parameters.AddWithValue("$id", id);
            cmd.Parameters.AddWithValue("$config", JsonSerializer.Serialize(config, ContainerRecordJson.Default.ContainerConfigRecord));
            return cmd.ExecuteNonQuery();
        });
        lock (_lock) if (_all.TryGetValue(id, out var cur)) _all[id] = cur with { Config = config };
    }

    // ---- top -----------------------------------------------------------------------------------------------

    /// <summary>docker top: host <c>ps</c> over the container's processes (from its cgroup). Without options
    /// <c>ps -f -p PIDS</c> (docker's -ef columns); with options, <c>ps OPTIONS</c> filtered to the container's pids by
    /// the PID column, as docker does.</summary>
    public async Task<ContainerTopResponse> TopAsync(string idOrName, string? psArgs, CancellationToken ct)
    {
        ContainerRecord c = Get(idOrName);
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id} is not running");
        IReadOnlyList<int> pids;
        try { pids = _runtime.Pids(c.Id); }
        catch (Exception e) when (e is RuntimeException or IOException) { throw EngineException.Conflict($"container {c.Id} is not running: {e.Message}"); }
        var args = new List<string>();
        bool custom = !string.IsNullOrWhiteSpace(psArgs);
        if (custom) args.AddRange(SplitArgs(psArgs!));
        else args.AddRange(["-f", "-p", pids.Count > 0 ? string.Join(',', pids) : "0"]);
        var psi = new ProcessStartInfo("ps") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        string output, error;
        int exit;
        try
        {
            using Process p = Process.Start(psi)!;
            Task<string> o = p.StandardOutput.ReadToEndAsync(ct), e = p.StandardError.ReadToEndAsync(ct);
            await p.WaitForExitAsync(ct);
            (output, error, exit) = (await o, await e, p.ExitCode);
        }
        catch (System.ComponentModel.Win32Exception e) { throw new EngineException(ErrorCodes.Internal, $"cannot run ps: {e.Message}"); }
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // ps -p exits 1 when none of the pids exists any more: still a (empty) table.
        if (lines.Length == 0)
        {
            if (exit != 0 && custom) throw EngineException.Invalid($"ps {psArgs}: {error.Trim()}");
            return new ContainerTopResponse(["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], []);
        }
        var titles = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        int pidCol = titles.IndexOf("PID");
        if (pidCol < 0) throw EngineException.Invalid($"ps {psArgs}: its output has no PID column (docker top needs one)");
        var set = pids.ToHashSet();
        var rows = new List<List<string>>();
        foreach (string line in lines.Skip(1))
        {
            var fields = line.Split(' ', titles.Count, StringSplitOptions.RemoveEmptyEntries).ToList();
            if (fields.Count < titles.Count) continue;
            fields[^1] = fields[^1].Trim();
            if (!int.TryParse(fields[pidCol], out int pid) || !set.Contains(pid)) continue;
            rows.Add(fields);
        }
        return new ContainerTopResponse(titles, rows);
    }

    /// <summary>ps options as docker passes them: split at spaces ("-o pid,comm" → two words).</summary>
    private static List<string> SplitArgs(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();

    // ---- stats ---------------------------------------------------------------------------------------------

    /// <summary>Samples of the container's cgroup counters: one a second while <paramref name="stream"/>; else a
    /// single one, taken half a second after a first so that its CPU % means something.</summary>
    public async IAsyncEnumerable<ContainerStats> Stats(string idOrName, bool stream, [EnumeratorCancellation] CancellationToken ct)
    {
        string id = Get(idOrName).Id;
        ContainerStats? prev = null;
        if (!stream)
        {
            prev = Sample(id, null);
            try { await Task.Delay(500, ct); }
            catch (OperationCanceledException) { yield break; }
            yield return Sample(id, prev);
            yield break;
        }
        while (!ct.IsCancellationRequested)
        {
            if (Find(id) is null) yield break;
            var s = Sample(id, prev);
            yield return s;
            prev = s;
            try { await Task.Delay(1000, ct); }
            catch (OperationCanceledException) { yield break; }
        }
    }

    private ContainerStats Sample(string id, ContainerStats? prev)
    {
        ContainerRecord c = Find(id) ?? throw EngineException.NotFound($"no such container: {id}");
        var s = new ContainerStats
        {
            Id = c.Id, Name = c.Name, Read = DateTimeOffset.UtcNow, OnlineCpus = Environment.ProcessorCount,
            SystemCpu = SystemCpuNanos(), PreCpuTotal = prev?.CpuTotal ?? 0, PreSystemCpu = prev?.SystemCpu ?? 0,
        };
        if (c.State.Status != ContainerStatus.Running) return s;
        CgroupStats cg;
        try { cg = _runtime.Stats(c.Id); }
        catch (Exception e) when (e is RuntimeException or IOException or CgroupException) { return s; }
        ulong hostMem = HostMemory();
        ulong limit = cg.Memory.Usage.Limit is ulong l and > 0 && l < hostMem ? l : hostMem;
        var raw = cg.Memory.Raw;
        ulong inactive = raw is null ? 0 : raw.GetValueOrDefault("total_inactive_file", raw.GetValueOrDefault("inactive_file"));
        ulong usage = cg.Memory.Usage.Usage;
        ulong read = 0, write = 0;
        foreach (var e in cg.Blkio.IoServiceBytesRecursive ?? [])
        {
            if (string.Equals(e.Op, "Read", StringComparison.OrdinalIgnoreCase)) read += e.Value;
            else if (string.Equals(e.Op, "Write", StringComparison.OrdinalIgnoreCase)) write += e.Value;
        }
        var (rx, tx) = NetDev(c.State.Pid, c.State.PidStart);
        return s with
        {
            Running = true, CpuTotal = cg.Cpu.Usage.Total, MemoryUsage = usage > inactive ? usage - inactive : usage, MemoryLimit = limit,
            BlockRead = read, BlockWrite = write, NetRx = rx, NetTx = tx, Pids = cg.Pids.Current,
            PidsLimit = cg.Pids.Limit is 0 or ulong.MaxValue ? null : cg.Pids.Limit,
        };
    }

    /// <summary>The host's CPU time in nanoseconds: the first line of /proc/stat (USER_HZ = 100 ticks a second).</summary>
    private static ulong SystemCpuNanos()
    {
        try
        {
            using var r = new StreamReader("/proc/stat");
            string? line = r.ReadLine();
            if (line is null || !line.StartsWith("cpu ", StringComparison.Ordinal)) return 0;
            ulong ticks = 0;
            foreach (string f in line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8))
                ticks += ulong.TryParse(f, out ulong v) ? v : 0;
            return ticks * 10_000_000;
        }
        catch (IOException) { return 0; }
    }

    private static ulong HostMemory()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                    return ulong.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (Exception e) when (e is IOException or FormatException) { }
        return 0;
    }

    /// <summary>Bytes received and sent by the container's interfaces other than lo (its network namespace's
    /// /proc/PID/net/dev); 0 while containers have no network of their own.</summary>
    private static (ulong Rx, ulong Tx) NetDev(int pid, ulong start)
    {
        if (pid <= 0 || !Processes.IsAlive(pid, start)) return (0, 0);
        ulong rx = 0, tx = 0;
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/net/dev").Skip(2))
            {
                int colon = line.IndexOf(':');
                if (colon < 0 || line[..colon].Trim() == "lo") continue;
                var f = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 9) continue;
                rx += ulong.TryParse(f[0], out ulong r) ? r : 0;
                tx += ulong.TryParse(f[8], out ulong t) ? t : 0;
            }
        }
        catch (IOException) { }
        return (rx, tx);
    }

    // ---- diff ----------------------------------------------------------------------------------------------

    public List<ContainerChange> Changes(string idOrName)
    {
        ContainerRecord c = Get(idOrName);
        try
        {
            return UpperChanges.List(Path.Combine(DirOf(c.Id), "upper"), WithInitLayer(c.Id, ImageLayers(c)))
                .Select(ch => new ContainerChange(ch.Path, ch.Kind.ToString())).ToList();
        }
        catch (IOException e) { throw new EngineException(ErrorCodes.Internal, $"diff of container {c.Id}: {e.Message}"); }
    }

    // ---- commit --------------------------------------------------------------------------------------------

    public ContainerCommitResponse Commit(string idOrName, ContainerCommitRequest r)
    {
        ContainerRecord c = Get(idOrName);
        string? name = null;
        if (!string.IsNullOrEmpty(r.Name))
        {
            if (r.Name.Contains('@')) throw EngineException.Invalid($"commit {r.Name}: a name cannot contain a digest");
            name = ImageService.WithDefaultTag(r.Name);
            try { ReferenceStore.ValidateName(name); }
            catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
        }
        ConfigChanges changes = ImageTransfer.ParseChanges(r.Changes ?? []);
        bool froze = false;
        if (r.Pause && c.State.Status == ContainerStatus.Running && !c.State.Paused)
        {
            try { _runtime.Pause(c.Id); froze = true; }
            catch (Exception e) when (e is RuntimeException or IOException or CgroupException) { throw EngineException.Conflict($"cannot pause container {c.Id} for the commit: {e.Message}"); }
        }
        WrittenImage image;
        try
        {
            using StoreLock storeLock = StoreLock.Shared(_content.Root);
            LayerDiffResult layer = LayerDiff.Create(Path.Combine(DirOf(c.Id), "upper"), _content);
            ResolvedImage baseImage = BaseImage(c);
            baseImage = baseImage with { Config = baseImage.Config with { Config = ContainerImageConfig(c, baseImage.Config.Config) } };
            image = ImageWriter.Write(_content, baseImage, [layer.ToNewLayer()], new CommitOptions
            {
                Changes = changes, Comment = string.IsNullOrEmpty(r.Comment) ? null : r.Comment, Author = string.IsNullOrEmpty(r.Author) ? null : r.Author,
                CreatedBy = string.Join(' ', c.Config.Args),
            });
            _refs.Tag(name ?? image.Id.ToString(), image.Manifest);
        }
        catch (Exception e) when (e is ContentException or ArgumentException or IOException)
        {
            throw EngineException.Invalid($"commit of container {c.Id}: {e.Message}");
        }
        finally
        {
            if (froze)
            {
                try { _runtime.Resume(c.Id); }
                catch (Exception e) when (e is RuntimeException or IOException or CgroupException) { _log($"container {c.Id[..12]}: thaw after commit: {e.Message}"); }
            }
        }
        var attrs = new Dictionary<string, string> { ["image"] = c.Image, ["imageID"] = image.Id.ToString() };
        if (name is not null) attrs["imageName"] = name;
        if (!string.IsNullOrEmpty(r.Comment)) attrs["comment"] = r.Comment;
        _events.Publish("container", "commit", c.Id, c.Name, attrs);
        return new ContainerCommitResponse(image.Id.ToString(), name);
    }

    /// <summary>The image the container was made from, by the manifest/index digest it was created with (its lease keeps
    /// those blobs even when the name has moved on or gone).</summary>
    private ResolvedImage BaseImage(ContainerRecord c)
    {
        var digest = Digest.Parse(c.Config.ImageTarget);
        byte[] doc = _content.ReadAllBytes(digest, 4 * 1024 * 1024);
        string mediaType = MediaTypes.OciManifest;
        using (JsonDocument j = JsonDocument.Parse(doc))
            if (j.RootElement.TryGetProperty("mediaType", out JsonElement mt) && mt.GetString() is { Length: > 0 } s) mediaType = s;
            else if (j.RootElement.TryGetProperty("manifests", out _)) mediaType = MediaTypes.OciIndex;
        var target = new Descriptor { MediaType = mediaType, Digest = digest, Size = doc.Length };
        return new ImageResolver(_content, _refs).Resolve(c.Image, target);
    }

    /// <summary>docker commit keeps the container's own command, environment, working directory, user and labels.</summary>
    private static ContainerConfig ContainerImageConfig(ContainerRecord c, ContainerConfig? image)
    {
        image ??= new ContainerConfig();
        ContainerCreateRequest req = c.Config.Request;
        var labels = new Dictionary<string, string>(image.Labels ?? new Dictionary<string, string>());
        foreach (var kv in req.Labels ?? []) labels[kv.Key] = kv.Value;
        return image with
        {
            Entrypoint = req.Entrypoint ?? image.Entrypoint,
            Cmd = req.Cmd is { Count: > 0 } ? req.Cmd : req.Entrypoint is not null ? null : image.Cmd,
            Env = c.Config.Env.Where(e => !e.StartsWith("HOSTNAME=", StringComparison.Ordinal)).ToList(),
            WorkingDir = string.IsNullOrEmpty(req.WorkingDir) ? image.WorkingDir : req.WorkingDir,
            User = string.IsNullOrEmpty(req.User) ? image.User : req.User,
            Labels = labels.Count > 0 ? labels : null,
        };
    }

    // ---- archive (cp) --------------------------------------------------------------------------------------

    /// <summary>The container's root as the host sees it: a running container's through /proc/PID/root (its mounts
    /// included), a stopped one's overlay mount (mounted again if a reboot or daemon restart took it away).</summary>
    private SafeFileHandle OpenContainerRoot(ContainerRecord c)
    {
        if (c.State.Status == ContainerStatus.Running && c.State.Pid > 0)
        {
            SafeFileHandle h = RootedFs.OpenRoot($"/proc/{c.State.Pid}/root");
            if (Processes.IsAlive(c.State.Pid, c.State.PidStart)) return h; // checked after the open: not a reused pid
            h.Dispose();
        }
        try { MountRootfs(c.Id, ImageLayers(c), c.Config.Request.AutoRemove); }
        catch (LinuxException e) { throw new EngineException(ErrorCodes.Internal, $"cannot mount the root filesystem of container {c.Id}: {e.Message}"); }
        return RootedFs.OpenRoot(RootfsOf(c.Id));
    }

    private static EngineException Explain(RootedPathException e) => e.NotFound ? EngineException.NotFound(e.Message) : EngineException.Invalid(e.Message);

    public ContainerPathStat StatPath(string idOrName, string path)
    {
        ContainerRecord c = Get(idOrName);
        using SafeFileHandle root = OpenContainerRoot(c);
        try { return ToApi(RootedFs.Stat(root, path)); }
        catch (RootedPathException e) { throw Explain(e); }
    }

    private static ContainerPathStat ToApi(RootedPathInfo i) => new(i.Name, i.Size, i.Mode, i.MTime, i.LinkTarget);

    /// <summary>Checks the path (so that a missing one is a 404 before any byte is sent) and returns its stat and a writer
    /// of its tar.</summary>
    public (ContainerPathStat Stat, Action<Stream> Write) ArchivePath(string idOrName, string path)
    {
        ContainerRecord c = Get(idOrName);
        SafeFileHandle root = OpenContainerRoot(c);
        ContainerPathStat stat;
        try { stat = ToApi(RootedFs.Stat(root, path)); }
        catch (RootedPathException e) { root.Dispose(); throw Explain(e); }
        return (stat, output =>
        {
            using (root) RootedFs.WriteTar(root, path, output);
        });
    }

    public void ExtractArchive(string idOrName, string path, Stream tar)
    {
        ContainerRecord c = Get(idOrName);
        using SafeFileHandle root = OpenContainerRoot(c);
        try
        {
            RootedPathInfo dest = RootedFs.Stat(root, path.TrimEnd('/') + "/");
            if (!dest.IsDirectory) throw EngineException.Invalid($"extraction point is not a directory: {path}");
            RootedFs.Extract(root, path, tar);
        }
        catch (RootedPathException e) { throw Explain(e); }
        catch (LayerException e) { throw EngineException.Invalid($"copy into container {c.Id[..12]}: {e.Message}"); }
        _events.Publish("container", "extract-to-dir", c.Id, c.Name, new Dictionary<string, string> { ["path"] = path });
    }
}

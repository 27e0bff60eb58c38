using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.Images;
using Vessel.Engine.Networks;
using Vessel.Engine.State;
using Vessel.Engine.Volumes;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Spec;
using RtStatus = Vessel.Runtime.State.ContainerStatus;

namespace Vessel.Engine.Containers;

/// <summary>Containers through the daemon (docs/containers.md): a bundle per container from the image's
/// snapshots (overlay mounted by us), run by <see cref="ContainerRuntime"/> under a per-container monitor
/// (vessel-executor monitor) that owns the logs and the exit status, so containers outlive the daemon.
/// State lives in the containers table, one transaction per change; a watcher polls the monitors.</summary>
public sealed partial class ContainerService : IDisposable
{
    public const long LogMaxBytes = 10 * 1024 * 1024;
    public const int LogFiles = 3;

    private readonly Database _db;
    private readonly EventBus _events;
    private readonly ImageService _images;
    private readonly ContentStore _content;
    private readonly ReferenceStore _refs;
    private readonly SnapshotStore _snapshots;
    private readonly LeaseStore _leases;
    private readonly ContainerRuntime _runtime;
    private readonly NetworkService _network;
    private readonly VolumeService _volumes;
    private readonly Action<string> _log;
    private readonly Dictionary<string, ContainerRecord> _all = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _watcher;

    public string Dir { get; }

    public ContainerService(string root, string runRoot, Database db, EventBus events, ImageService images, ContentStore content,
        ReferenceStore refs, SnapshotStore snapshots, LeaseStore leases, VolumeService volumes, NetworkService network, Action<string>? log)
    {
        _volumes = volumes;
        _network = network;
        _db = db;
        _events = events;
        _images = images;
        _content = content;
        _refs = refs;
        _log = log ?? (_ => { });
        _snapshots = snapshots;
        _leases = leases;
        Dir = Path.Combine(root, "containers");
        Directory.CreateDirectory(Dir, (UnixFileMode)0x1c9); // 0711
        _runtime = new ContainerRuntime(Path.Combine(runRoot, "runtime"), w => _log("runtime: " + w));
    }

    private string DirOf(string id) => Path.Combine(Dir, id);
    private string RootfsOf(string id) => Path.Combine(Dir, id, "rootfs");

    // ---- start-up: re-adopt, record exits that happened while we were down, clean leftovers --------------

    public void Recover()
    {
        var rows = _db.Read(c =>
        {
            using SqliteCommand cmd = c.CreateCommand();
            cmd.CommandText = "SELECT id, name, image, created, config, state FROM containers";
            using SqliteDataReader r = cmd.ExecuteReader();
            var list = new List<ContainerRecord>();
            while (r.Read())
                list.Add(new ContainerRecord(r.GetString(0), r.GetString(1), r.GetString(2),
                    DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3) / 1_000_000),
                    JsonSerializer.Deserialize(r.GetString(4), ContainerRecordJson.Default.ContainerConfigRecord)!,
                    JsonSerializer.Deserialize(r.GetString(5), ContainerRecordJson.Default.ContainerStateRecord)!));
            return list;
        });
        lock (_lock) foreach (var c in rows) _all[c.Id] = c;
        foreach (var c in rows)
        {
            if (c.State.Status != ContainerStatus.Running) continue;
            if (Processes.IsAlive(c.State.MonitorPid, c.State.MonitorStart))
            {
                _log($"container {c.Id[..12]}: re-adopted (monitor {c.State.MonitorPid})");
                StartHealthCheck(c);
                WatchMonitor(c.State.MonitorPid);
                continue;
            }
            Exited(c.Id);
        }
        Dictionary<string, int> running;
        HashSet<string> existing;
        lock (_lock) (running, existing) = (_all.Values.Where(c => c.State.Status == ContainerStatus.Running).ToDictionary(c => c.Id, c => c.State.Pid), _all.Keys.ToHashSet());
        _network.Recover(running, existing);
        // Directories, mounts and runtime state that belong to no container (a crash in the middle of create/rm).
        foreach (var dir in Directory.EnumerateDirectories(Dir))
        {
            var id = Path.GetFileName(dir);
            bool known;
            lock (_lock) known = _all.ContainsKey(id);
            if (known) continue;
            _log($"removing leftover container directory {id}");
            try { Discard(id); }
            catch (Exception e) when (e is IOException or LinuxException or UnauthorizedAccessException) { _log($"cleaning {id}: {e.Message}"); }
        }
        foreach (var id in _runtime.Store.Ids().ToList())
        {
            bool known;
            lock (_lock) known = _all.ContainsKey(id);
            if (!known) TryRuntimeDelete(id);
        }
        RecoverLeases();
        RestartAtDaemonStart();
        _watcher = Task.Run(WatchAsync);
    }

    /// <summary>Container leases are written and deleted without fsyncs (a `run --rm` pays none), so after a power loss
    /// they are made to match the containers again before anything can collect garbage: a lease whose container is
    /// gone would keep the image's content forever, and a container whose lease is gone would lose it.</summary>
    private void RecoverLeases()
    {
        var leased = new HashSet<string>(StringComparer.Ordinal);
        foreach (var lease in _leases.List().Where(l => l.Kind == LeaseKind.Container))
        {
            bool known;
            string? owner = lease.Labels?.GetValueOrDefault("container");
            lock (_lock) known = owner is not null && _all.ContainsKey(owner);
            if (known) { leased.Add(owner!); continue; }
            _log($"removing the lease {lease.Id} of a container that no longer exists");
            _leases.Delete(lease.Id);
        }
        List<ContainerRecord> unleased;
        lock (_lock) unleased = _all.Values.Where(c => !leased.Contains(c.Id)).ToList();
        foreach (var c in unleased)
        {
            try
            {
                _leases.Create("container-" + c.Id, LeaseKind.Container, [Digest.Parse(c.Config.ImageTarget)], c.Config.Snapshots.Select(Digest.Parse),
                    labels: new Dictionary<string, string> { ["container"] = c.Id });
                _log($"container {c.Id[..12]}: its lease was lost; recreated");
            }
            catch (ContentException e) { _log($"container {c.Id[..12]}: recreating its lease: {e.Message}"); }
        }
    }

    /// <summary>Checks the monitors of running containers when one exits (pidfd, <see cref="ExitWatcher"/>) and every
    /// second anyway; a monitor that ended means the init ended.</summary>
    private async Task WatchAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try { await WaitWakeAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            List<ContainerRecord> running;
            lock (_lock) running = _all.Values.Where(c => c.State.Status == ContainerStatus.Running).ToList();
            foreach (var c in running)
            {
                try
                {
                    var waited = Processes.TryWaitExit(c.State.MonitorPid); // our child: reap it; -1: not ours
                    if (waited is null) continue;
                    if (waited == -1 && Processes.IsAlive(c.State.MonitorPid, c.State.MonitorStart)) continue;
                    Exited(c.Id);
                }
                catch (Exception e) { _log($"container {c.Id[..12]}: watcher: {e.Message}"); }
            }
        }
    }

    /// <summary>The monitor is gone: takes the exit from exit.json, cleans the runtime state, publishes die.</summary>
    private void Exited(string id)
    {
        ContainerRecord? c = Find(id);
        if (c is null || c.State.Status != ContainerStatus.Running) return;
        MonitorExit? exit = null;
        try { exit = JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(DirOf(id), "exit.json")), ContainerRecordJson.Default.MonitorExit); }
        catch (Exception e) when (e is IOException or JsonException) { }
        bool oom = ReadOomKilled(c);
        TryRuntimeDelete(id);
        _network.Stopped(id);
        var state = c.State with
        {
            OomKilled = oom,
            Status = ContainerStatus.Exited, Pid = 0, MonitorPid = 0, MonitorStart = 0, Paused = false,
            ExitCode = exit?.ExitCode ?? 255, Signal = exit is { Signal: > 0 } ? exit.Signal : null,
            FinishedAt = ParseTime(exit?.FinishedAt) ?? DateTimeOffset.UtcNow,
            Error = exit is null ? "the container's monitor ended without recording an exit status" : null,
        };
        Save(c with { State = state });
        if (oom) _events.Publish("container", "oom", id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
        _events.Publish("container", "die", id, c.Name, new Dictionary<string, string> { ["exitCode"] = state.ExitCode.ToString()!, ["image"] = c.Image });
        if (c.Config.Request.AutoRemove && !DeferRemoval(id))
        {
            try { Remove(id, force: true, removeVolumes: true); }
            catch (Exception e) when (e is EngineException or IOException or LinuxException) { _log($"container {id[..12]}: --rm: {e.Message}"); }
        }
        else if (Find(id) is { } after) MaybeRestart(after);
    }

    private void TryRuntimeDelete(string id)
    {
        try { if (_runtime.Store.Exists(id)) _runtime.Delete(id, force: true); }
        catch (Exception e) when (e is RuntimeException or IOException) { _log($"container {id[..12]}: runtime delete: {e.Message}"); }
    }

    // ---- create / start ----------------------------------------------------------------------------------

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")]
    private static partial Regex NamePattern();

    private ContainerCreateResponse CreateOnce(ContainerCreateRequest req)
    {
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        string name = string.IsNullOrEmpty(req.Name) ? GenerateName() : req.Name.TrimStart('/');
        if (!NamePattern().IsMatch(name)) throw EngineException.Invalid($"invalid container name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        lock (_lock)
            if (_all.Values.Any(c => c.Name == name))
                throw EngineException.Conflict($"the container name \"{name}\" is already in use by container \"{_all.Values.First(c => c.Name == name).Id}\"");
        ImageReference r = _images.Find(req.Image)[0];
        ResolvedImage image;
        IReadOnlyList<string> lower;
        try
        {
            image = new ImageResolver(_content, _refs).Resolve(r.Name, r.Target);
            lower = _snapshots.Unpack(_content, image);
        }
        catch (ContentException e) { throw EngineException.Invalid(e.Message); }
        var chain = SnapshotStore.ChainIds(image.Config.RootFs.DiffIds);
        var imageConfig = image.Config.Config ?? new ContainerConfig();
        ContainerExtras.Validate(req, imageConfig);
        var mountRequests = ContainerMounts.Requests(req, imageConfig);
        var newVolumes = new List<string>();
        var pinned = new List<string>();
        string dir = DirOf(id);
        string leaseId = "container-" + id;
        ContainerNetworkPlan? net = null;
        try
        {
            // Not fsynced: a power loss that takes it takes the database row too, or start-up recreates it (Recover).
            _leases.Create(leaseId, LeaseKind.Container, [image.Target.Digest], chain, labels: new Dictionary<string, string> { ["container"] = id }, durable: false);
            Directory.CreateDirectory(dir, (UnixFileMode)0x1c9);
            foreach (var sub in new[] { "upper", "work", "rootfs" }) Directory.CreateDirectory(Path.Combine(dir, sub), (UnixFileMode)0x1ed);
            CreateInitLayer(dir);
            MountRootfs(id, lower, req.AutoRemove);
            var mounts = ContainerMounts.Resolve(_volumes, mountRequests, newVolumes);
            pinned = mounts.Where(m => m.Name is not null).Select(m => m.Name!).ToList();
            _volumes.Pin(pinned);
            ContainerMounts.CopyUpAll(RootfsOf(id), mounts, _log);
            string hostname = string.IsNullOrEmpty(req.Hostname) ? id[..12] : req.Hostname;
            File.WriteAllText(Path.Combine(dir, "hostname"), hostname + "\n");
            net = _network.Prepare(id, name, hostname, req, imageConfig.ExposedPorts?.Keys ?? [], n => { var o = Get(n); return (o.Id, o.Name); });
            File.WriteAllText(Path.Combine(dir, "hosts"), net.Hosts);
            File.WriteAllText(Path.Combine(dir, "resolv.conf"), net.ResolvConf);
            RuntimeSpec spec = ContainerSpec.Build(id, req, imageConfig, hostname, dir,
                ReadImageFile(id, "etc/passwd"), ReadImageFile(id, "etc/group"), net.Mode);
            ContainerExtras.Apply(spec, req, mounts);
            File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(spec, RuntimeJson.Indented.RuntimeSpec));
            var record = new ContainerRecord(id, name, req.Image, DateTimeOffset.UtcNow, new ContainerConfigRecord
            {
                Request = req, ImageId = image.Manifest.Config.Digest.ToString(), ImageTarget = image.Target.Digest.ToString(),
                Snapshots = chain.Select(d => d.ToString()).ToList(), Args = spec.Process!.Args!, Env = spec.Process.Env!,
                WorkingDir = spec.Process.Cwd, Hostname = hostname,
                Mounts = mounts.Count > 0 ? mounts : null, ImageStopSignal = imageConfig.StopSignal, ImageHealthcheck = imageConfig.Healthcheck,
            }, new ContainerStateRecord());
            _db.Write((conn, tx) =>
            {
                using SqliteCommand cmd = conn.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO containers (id, name, image, created, config, state) VALUES ($id, $name, $image, $created, $config, $state)";
                cmd.Parameters.AddWithValue("$id", id);
                cmd.Parameters.AddWithValue("$name", name);
                cmd.Parameters.AddWithValue("$image", req.Image);
                cmd.Parameters.AddWithValue("$created", record.Created.ToUnixTimeMilliseconds() * 1_000_000);
                cmd.Parameters.AddWithValue("$config", JsonSerializer.Serialize(record.Config, ContainerRecordJson.Default.ContainerConfigRecord));
                cmd.Parameters.AddWithValue("$state", JsonSerializer.Serialize(record.State, ContainerRecordJson.Default.ContainerStateRecord));
                return cmd.ExecuteNonQuery();
            });
            lock (_lock) _all[id] = record;
        }
        catch (Exception e)
        {
            try { Discard(id); _network.Release(id); }
            catch (Exception e2) when (e2 is IOException or LinuxException) { _log($"cleaning up a failed create: {e2.Message}"); }
            _volumes.Unpin(pinned);
            pinned = [];
            _volumes.RemoveAnonymous(newVolumes);
            if (e is SqliteException { SqliteErrorCode: 19 }) throw EngineException.Conflict($"the container name \"{name}\" is already in use");
            if (e is ContentException ce) throw EngineException.Invalid(ce.Message);
            if (e is LinuxException le) throw new EngineException(ErrorCodes.Internal, le.Message);
            throw;
        }
        finally { _volumes.Unpin(pinned); }
        _events.Publish("container", "create", id, name, new Dictionary<string, string> { ["image"] = req.Image });
        return new ContainerCreateResponse(id, name, net?.Warnings ?? []);
    }

    /// <param name="disposable">An auto-remove container's: mounted <c>volatile</c>, so that overlayfs skips every sync
    /// of the upper layer, the final one at the unmount included (a journal commit of the host's disk per `run --rm`).
    /// Only a host crash can lose what it wrote, and such a container is removed then anyway.</param>
    private void MountRootfs(string id, IReadOnlyList<string> lower, bool disposable)
    {
        string rootfs = RootfsOf(id), work = Path.Combine(DirOf(id), "work");
        if (Mounts.MountPoints().Contains(rootfs)) return;
        string options = OverlayMount.BuildOptions(WithInitLayer(id, lower), Path.Combine(DirOf(id), "upper"), work);
        if (disposable)
        {
            // Left by a volatile mount that a host crash ended; overlayfs refuses to mount again while it exists.
            string incompat = Path.Combine(work, "work", "incompat", "volatile");
            if (Directory.Exists(incompat)) Directory.Delete(incompat, recursive: true);
            try
            {
                Mounts.Mount("overlay", rootfs, "overlay", 0, options + ",volatile");
                return;
            }
            catch (LinuxException e) when (e.ErrorNumber == Errno.EINVAL) { } // a kernel before 5.10: an ordinary mount
        }
        Mounts.Mount("overlay", rootfs, "overlay", 0, options);
    }

    /// <summary>A file of the image's rootfs, or null; never through a symlink (it could name a host file).</summary>
    private string? ReadImageFile(string id, string rel)
    {
        string path = RootfsOf(id);
        foreach (var part in rel.Split('/'))
        {
            path = Path.Combine(path, part);
            var info = new FileInfo(path);
            if (info.LinkTarget is not null) return null;
        }
        try { return File.Exists(path) && new FileInfo(path).Length < 4 * 1024 * 1024 ? File.ReadAllText(path) : null; }
        catch (IOException) { return null; }
    }

    public void Start(string idOrName)
    {
        ContainerRecord c = Get(idOrName);
        if (c.State.Status == ContainerStatus.Running) return; // docker: starting a running container is a no-op
        lock (_lock) _backoff.Remove(c.Id);
        StartRecord(c, restartCount: 0); // a start by hand resets the policy's count, as docker's
    }

    private void StartRecord(ContainerRecord c, int restartCount)
    {
        string id = c.Id, dir = DirOf(id);
        TryRuntimeDelete(id);
        File.Delete(Path.Combine(dir, "exit.json"));
        try
        {
            MountRootfs(id, c.Config.Snapshots.Select(s => _snapshots.FsPath(Digest.Parse(s))).ToList(), c.Config.Request.AutoRemove);
        }
        catch (LinuxException e) { throw new EngineException(ErrorCodes.Internal, e.Message); }
        PrepareNetwork(c);
        var (monitor, console) = MonitorFor(c, dir);
        int pid;
        // The network is set up while the runtime moves the init into its cgroups (on cgroup v1 the first move waits
        // for an RCU grace period, milliseconds) and the init mounts its root: the init needs it only once it runs.
        Task? networking = null;
        try
        {
            using (console)
            using (monitor.ConsoleReceiver)
                pid = _runtime.Create(new CreateOptions(id, dir, Console: console, Monitor: monitor,
                    Spawned: p => networking = Task.Run(() => _network.Started(id, p))));
            if (networking is null) _network.Started(id, pid);
            else networking.GetAwaiter().GetResult();
            ConnectAttachers(c); // attach-then-start: connected before the init runs
            _runtime.Start(id);
        }
        catch (Exception e) when (e is RuntimeException or IOException or LinuxException or EngineException)
        {
            int code = e is RuntimeException { ExitCode: 126 or 127 } re ? re.ExitCode : 128;
            try { networking?.Wait(); }
            catch (AggregateException) { } // the failure that matters is e
            TryRuntimeDelete(id);
            _network.Stopped(id);
            if (monitor.Pid > 0) ExecutorSession.ReapMonitor(monitor.Pid);
            Save(c with { State = c.State with { Status = ContainerStatus.Exited, ExitCode = code, Error = e.Message, FinishedAt = DateTimeOffset.UtcNow, Pid = 0, MonitorPid = 0, RestartCount = restartCount } });
            throw new EngineException(code == 128 ? ErrorCodes.Internal : ErrorCodes.Invalid, e.Message);
        }
        Save(c with
        {
            State = new ContainerStateRecord
            {
                Status = ContainerStatus.Running, Pid = pid, PidStart = Processes.StartTime(pid) ?? 0, MonitorPid = monitor.Pid,
                MonitorStart = Processes.StartTime(monitor.Pid) ?? 0, StartedAt = DateTimeOffset.UtcNow,
                FinishedAt = c.State.FinishedAt, RestartCount = restartCount, StartedBefore = true,
            },
        });
        if (Find(id) is { } started) StartHealthCheck(started);
        WatchMonitor(monitor.Pid);
        _events.Publish("container", "start", id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
    }

    // ---- stop / kill / rm --------------------------------------------------------------------------------

    /// <param name="timeoutSeconds">null: the container's --stop-timeout, else 10; -1: wait forever.</param>
    /// <param name="signal">null: the container's stop signal (--stop-signal, the image's STOPSIGNAL, SIGTERM).</param>
    public async Task StopAsync(string idOrName, int? timeoutSeconds, CancellationToken ct, string? signal = null)
    {
        ContainerRecord c = Get(idOrName);
        int sig = string.IsNullOrEmpty(signal) ? StopSignalOf(c) : ParseSignal(signal);
        if (c.State.Status is not (ContainerStatus.Running or ContainerStatus.Restarting)) return;
        if (MarkStoppedByUser(c)) { _events.Publish("container", "stop", c.Id, c.Name); return; }
        int t = timeoutSeconds ?? c.Config.Request.StopTimeout ?? 10;
        TryKill(c.Id, sig, all: false);
        Unfreeze(c); // a frozen init gets its signal once thawed
        if (!await WaitNotRunningAsync(c.Id, t < 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(t), ct))
        {
            TryKill(c.Id, Signals.SIGKILL, all: true);
            await WaitNotRunningAsync(c.Id, TimeSpan.FromSeconds(30), ct);
        }
        _events.Publish("container", "stop", c.Id, c.Name);
    }

    public void Kill(string idOrName, string signal)
    {
        ContainerRecord c = Get(idOrName);
        if (c.State.Status == ContainerStatus.Restarting) { MarkStoppedByUser(c); return; }
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id[..12]} is not running");
        int sig = ParseSignal(signal);
        MarkStoppedByUser(c); // docker: a killed container is not restarted by its policy
        try { _runtime.Kill(c.Id, sig, all: false); }
        catch (RuntimeException e) { throw EngineException.Conflict(e.Message); }
        Unfreeze(c);
        _events.Publish("container", "kill", c.Id, c.Name, new Dictionary<string, string> { ["signal"] = sig.ToString(CultureInfo.InvariantCulture) });
    }

    public static int ParseSignal(string signal)
    {
        if (string.IsNullOrEmpty(signal)) return Signals.SIGKILL;
        return Signals.TryParse(signal, out int n) ? n : throw EngineException.Invalid($"invalid signal: {signal}");
    }

    private void TryKill(string id, int sig, bool all)
    {
        try { _runtime.Kill(id, sig, all); }
        catch (Exception e) when (e is RuntimeException or IOException or LinuxException) { }
    }

    public async Task RemoveAsync(string idOrName, bool force, CancellationToken ct, bool removeVolumes = false)
    {
        ContainerRecord c = Get(idOrName);
        if (c.State.Status == ContainerStatus.Restarting)
        {
            if (!force) throw EngineException.Conflict($"cannot remove container \"{c.Name}\": container is restarting: stop the container before removing or force remove");
            MarkStoppedByUser(c);
        }
        if (c.State.Status == ContainerStatus.Running)
        {
            if (!force) throw EngineException.Conflict($"cannot remove container \"{c.Name}\": container is running: stop the container before removing or force remove");
            TryKill(c.Id, Signals.SIGKILL, all: true);
            if (!await WaitNotRunningAsync(c.Id, TimeSpan.FromSeconds(30), ct))
                throw new EngineException(ErrorCodes.Internal, $"container {c.Id[..12]} did not exit after SIGKILL");
        }
        Remove(c.Id, force, removeVolumes);
    }

    private void Remove(string id, bool force, bool removeVolumes = false)
    {
        ContainerRecord? c = Find(id);
        if (c is null) return;
        if (c.State.Status == ContainerStatus.Running && !force) throw EngineException.Conflict("container is running");
        lock (_lock)
            if (!_all.Remove(id)) return; // removed concurrently (--rm and rm -f)
        TryRuntimeDelete(id);
        _network.Release(id);
        try { Discard(id); }
        catch (Exception e) when (e is IOException or LinuxException or UnauthorizedAccessException)
        {
            _log($"container {id[..12]}: cleaning up: {e.Message}");
        }
        _db.Write((conn, tx) =>
        {
            using SqliteCommand cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM containers WHERE id = $id";
            cmd.Parameters.AddWithValue("$id", id);
            return cmd.ExecuteNonQuery();
        });
        _events.Publish("container", "destroy", id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
        if (removeVolumes) _volumes.RemoveAnonymous((c.Config.Mounts ?? []).Where(m => m.Anonymous && m.Name is not null).Select(m => m.Name!));
    }

    /// <summary>(container, volume) for every volume mount of every container: what makes a volume "in use".</summary>
    public IReadOnlyList<(string ContainerId, string Volume)> VolumeUsers()
    {
        lock (_lock)
            return _all.Values.SelectMany(c => (c.Config.Mounts ?? []).Where(m => m.Name is not null).Select(m => (c.Id, m.Name!))).ToList();
    }

    /// <summary>Unmounts the rootfs, removes the directory and the lease.</summary>
    private void Discard(string id)
    {
        string rootfs = RootfsOf(id);
        if (Mounts.MountPoints().Contains(rootfs)) DetachRootfs(rootfs);
        if (Mounts.MountPoints().Contains(rootfs)) throw new IOException($"{rootfs} is still mounted");
        if (Directory.Exists(DirOf(id))) Directory.Delete(DirOf(id), recursive: true);
        _leases.Delete("container-" + id, durable: false); // a lease a power loss brings back is swept at start-up
    }

    // ---- queries -----------------------------------------------------------------------------------------

    private ContainerRecord? Find(string id)
    {
        lock (_lock) return _all.GetValueOrDefault(id);
    }

    /// <summary>By full id, name, or unique id prefix.</summary>
    public ContainerRecord Get(string idOrName)
    {
        if (string.IsNullOrEmpty(idOrName)) throw EngineException.Invalid("container name or id is empty");
        lock (_lock)
        {
            if (_all.TryGetValue(idOrName, out var c)) return c;
            var byName = _all.Values.FirstOrDefault(x => x.Name == idOrName.TrimStart('/'));
            if (byName is not null) return byName;
            var prefix = _all.Values.Where(x => x.Id.StartsWith(idOrName, StringComparison.Ordinal)).ToList();
            if (prefix.Count > 1) throw EngineException.Conflict($"multiple containers match {idOrName}");
            return prefix.FirstOrDefault() ?? throw EngineException.NotFound($"no such container: {idOrName}");
        }
    }

    /// <summary>Every container, running or not, with the image it was made from (manifest target digest) and
    /// its directory (writable layer, logs): what prune, rmi and system df must account for.</summary>
    public IReadOnlyList<(string Id, string Name, string ImageTarget, string Dir)> Usage()
    {
        lock (_lock) return _all.Values.Select(c => (c.Id, c.Name, c.Config.ImageTarget, Path.Combine(Dir, c.Id))).ToList();
    }

    public IReadOnlyList<ContainerSummary> List(bool all)
    {
        List<ContainerRecord> list;
        lock (_lock) list = _all.Values.Where(c => all || c.State.Status is ContainerStatus.Running or ContainerStatus.Restarting).OrderByDescending(c => c.Created).ToList();
        return list.Select(c => new ContainerSummary
        {
            Id = c.Id, Name = c.Name, Image = c.Image, ImageId = c.Config.ImageId, Command = string.Join(' ', c.Config.Args),
            Created = c.Created, State = StateInfo(c), Labels = c.Config.Request.Labels, Ports = _network.PortsOf(c.Id),
        }).ToList();
    }

    public ContainerInspect Inspect(string idOrName)
    {
        var c = Get(idOrName);
        return new ContainerInspect
        {
            Id = c.Id, Name = c.Name, Image = c.Image, ImageId = c.Config.ImageId, Created = c.Created, Path = c.Config.Args[0],
            Args = c.Config.Args.Skip(1).ToList(), State = StateInfo(c), Config = c.Config.Request, Bundle = DirOf(c.Id),
            LogPath = Path.Combine(DirOf(c.Id), "container.log"), Env = c.Config.Env, WorkingDir = c.Config.WorkingDir, Hostname = c.Config.Hostname,
            NetworkSettings = _network.Settings(c.Id),
            Mounts = c.Config.Mounts, RestartCount = c.State.RestartCount, Ports = _network.PortsOf(c.Id) ?? c.Config.Request.Ports,
        };
    }

    private ContainerStateInfo StateInfo(ContainerRecord c) => new()
    {
        Status = c.State.Paused ? ContainerStatus.Paused : c.State.Status, Running = c.State.Status == ContainerStatus.Running, Paused = c.State.Paused, Pid = c.State.Pid, ExitCode = c.State.ExitCode,
        Signal = c.State.Signal, StartedAt = c.State.StartedAt, FinishedAt = c.State.FinishedAt, Error = c.State.Error,
        MonitorPid = c.State.MonitorPid > 0 ? c.State.MonitorPid : null, OomKilled = c.State.OomKilled, Health = HealthOf(c),
    };

    private async Task<bool> WaitNotRunningAsync(string id, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = timeout == Timeout.InfiniteTimeSpan ? DateTime.MaxValue : DateTime.UtcNow + timeout;
        while (true)
        {
            var c = Find(id);
            if (c is null || c.State.Status != ContainerStatus.Running) return true;
            if (DateTime.UtcNow >= deadline) return false;
            await WaitChangeAsync(20, ct);
        }
    }

    /// <summary>Waits until the container has run and exited; its exit code. An exit the restart policy follows by a
    /// new start counts too (FinishedAt moves past the start that was current when the wait began).</summary>
    public async Task<int> WaitAsync(string idOrName, CancellationToken ct)
    {
        var first = Get(idOrName);
        var id = first.Id;
        if (first.State.Status == ContainerStatus.Exited) return first.State.ExitCode ?? 0;
        DateTimeOffset? startedAt = first.State.Status == ContainerStatus.Created ? null : first.State.StartedAt;
        while (true)
        {
            var c = Find(id);
            if (c is null) return 0;
            if (c.State.Status == ContainerStatus.Exited) return c.State.ExitCode ?? 0;
            if (c.State.FinishedAt is { } f && (startedAt is null ? c.State.StartedAt is not null : f >= startedAt)) return c.State.ExitCode ?? 0;
            await WaitChangeAsync(20, ct);
        }
    }

    // ---- exec --------------------------------------------------------------------------------------------

    public async Task<ContainerExecResponse> ExecAsync(string idOrName, ContainerExecRequest req, CancellationToken ct)
    {
        var c = Get(idOrName);
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id[..12]} is not running");
        if (req.Cmd is not { Count: > 0 }) throw EngineException.Invalid("exec needs a command");
        ProcessSpec process = ExecProcess(c, req.Cmd, req.Env, req.WorkingDir, req.User, tty: false);
        var (outR, outW) = SafeFd.Pipe();
        var (errR, errW) = SafeFd.Pipe();
        using var devNull = SafeFd.Open("/dev/null", 0);
        int pid;
        try
        {
            pid = _runtime.Exec(new ExecOptions(c.Id, process, Stdio: [devNull, outW, errW]));
        }
        catch (RuntimeException e) when (e.ExitCode is 126 or 127)
        {
            outR.Dispose(); errR.Dispose();
            return new ContainerExecResponse(e.ExitCode, "", e.Message + "\n");
        }
        catch (RuntimeException e)
        {
            outR.Dispose(); errR.Dispose();
            throw EngineException.Conflict(e.Message);
        }
        finally
        {
            outW.Dispose();
            errW.Dispose();
        }
        _events.Publish("container", "exec_start", c.Id, c.Name, new Dictionary<string, string> { ["execID"] = pid.ToString(CultureInfo.InvariantCulture) });
        static async Task<string> ReadAll(SafeFd fd)
        {
            using var fs = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd.DangerousGetHandle(), ownsHandle: false), FileAccess.Read, 1, isAsync: false);
            using var reader = new StreamReader(fs, Encoding.UTF8);
            return await Task.Run(() => reader.ReadToEnd());
        }
        using (outR)
        using (errR)
        {
            var o = ReadAll(outR);
            var e = ReadAll(errR);
            int code = await Task.Run(() => Processes.WaitExit(pid), CancellationToken.None);
            return new ContainerExecResponse(code, await o, await e);
        }
    }

    // ---- logs --------------------------------------------------------------------------------------------

    /// <summary>container.log.N … .1, container.log in order; with <paramref name="follow"/> then polls the file
    /// until the container is no longer running and everything is read.</summary>
    public async IAsyncEnumerable<ContainerLogLine> Logs(string idOrName, bool follow, int? tail, DateTimeOffset? since,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var c = Get(idOrName);
        string dir = DirOf(c.Id), current = Path.Combine(dir, "container.log");
        var lines = new List<ContainerLogLine>();
        for (int i = LogSettings.Of(c.Config.Request).Files - 1; i >= 1; i--) ReadLogFile(Path.Combine(dir, $"container.log.{i}"), 0, lines);
        long pos = ReadLogFile(current, 0, lines);
        IEnumerable<ContainerLogLine> first = lines;
        if (since is not null) first = first.Where(l => l.Time >= since);
        if (tail is int t && t >= 0) first = first.TakeLast(t);
        foreach (var l in first) yield return l;
        if (!follow) yield break;
        while (!ct.IsCancellationRequested)
        {
            var running = Find(c.Id)?.State.Status == ContainerStatus.Running;
            var more = new List<ContainerLogLine>();
            if (File.Exists(current) && new FileInfo(current).Length < pos) pos = 0; // rotated
            pos = ReadLogFile(current, pos, more);
            foreach (var l in more) yield return l;
            if (!running && more.Count == 0) yield break;
            if (more.Count == 0)
            {
                try { await WaitChangeAsync(50, ct); }
                catch (OperationCanceledException) { yield break; }
            }
        }
    }

    /// <summary>Reads complete lines from <paramref name="offset"/>; returns the offset after the last complete line.</summary>
    private static long ReadLogFile(string path, long offset, List<ContainerLogLine> into)
    {
        byte[] data;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (fs.Length <= offset) return offset;
            fs.Position = offset;
            data = new byte[fs.Length - offset];
            fs.ReadExactly(data);
        }
        catch (FileNotFoundException) { return offset; }
        catch (DirectoryNotFoundException) { return offset; }
        int start = 0;
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] != (byte)'\n') continue;
            try
            {
                var e = JsonSerializer.Deserialize(data.AsSpan(start, i - start), ContainerRecordJson.Default.MonitorLogEntry);
                if (e is not null) into.Add(new ContainerLogLine(e.Stream, e.Log, ParseTime(e.Time) ?? DateTimeOffset.UnixEpoch));
            }
            catch (JsonException) { }
            start = i + 1;
        }
        return offset + start;
    }

    /// <summary>RFC 3339 with up to 9 fractional digits (.NET parses at most 7).</summary>
    public static DateTimeOffset? ParseTime(string? s)
    {
        if (string.IsNullOrEmpty(s)) return null;
        var m = Regex.Match(s, @"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$");
        if (!m.Success) return null;
        var frac = m.Groups[2].Success ? m.Groups[2].Value[..Math.Min(8, m.Groups[2].Value.Length)] : "";
        return DateTimeOffset.TryParse(m.Groups[1].Value + frac + m.Groups[3].Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;
    }

    // ---- persistence -------------------------------------------------------------------------------------

    private void Save(ContainerRecord c)
    {
        _db.Write((conn, tx) =>
        {
            using SqliteCommand cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE containers SET state = $state WHERE id = $id";
            cmd.Parameters.AddWithValue("$id", c.Id);
            cmd.Parameters.AddWithValue("$state", JsonSerializer.Serialize(c.State, ContainerRecordJson.Default.ContainerStateRecord));
            return cmd.ExecuteNonQuery();
        });
        lock (_lock) if (_all.ContainsKey(c.Id)) _all[c.Id] = c;
        NotifyChanged();
    }

    private static readonly string[] Adjectives = ["brave", "calm", "eager", "fond", "happy", "keen", "lucid", "merry", "noble", "quiet", "sharp", "swift", "vivid", "witty", "zen"];
    private static readonly string[] Nouns = ["albatross", "barge", "canoe", "dinghy", "ferry", "galleon", "hull", "junk", "ketch", "lugger", "punt", "raft", "sloop", "tug", "yawl"];

    private string GenerateName()
    {
        for (int i = 0; ; i++)
        {
            string n = $"{Adjectives[RandomNumberGenerator.GetInt32(Adjectives.Length)]}_{Nouns[RandomNumberGenerator.GetInt32(Nouns.Length)]}";
            if (i > 5) n += RandomNumberGenerator.GetInt32(1000);
            lock (_lock) if (!_all.Values.Any(c => c.Name == n)) return n;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _watcher?.Wait(2000); } catch (AggregateException) { }
        DisposeWatchers();
    }
}

using System.Text.Json;
using Vessel.Linux;
using Vessel.Runtime.Cgroups;
using Vessel.Runtime.Plan;
using Vessel.Runtime.Spec;
using Vessel.Runtime.State;

namespace Vessel.Runtime;

/// <summary>Options of `create` (and `run`). <paramref name="Spawned"/> is called with the init's pid as soon as it
/// exists, before the cgroups take it and before it sets itself up: its namespaces can be prepared meanwhile.</summary>
public sealed record CreateOptions(string Id, string Bundle, string? PidFile = null, string? ConsoleSocket = null,
    bool NoPivot = false, int PreserveFds = 0, SafeFd? Console = null, MonitorOptions? Monitor = null,
    IReadOnlyList<SafeFd>? Stdio = null, Action<int>? Spawned = null);

/// <summary>Options of `exec`.</summary>
public sealed record ExecOptions(string Id, ProcessSpec Process, string? PidFile = null, string? ConsoleSocket = null,
    int PreserveFds = 0, SafeFd? Console = null, IReadOnlyList<SafeFd>? Stdio = null);

/// <summary>The OCI runtime operations on containers kept under one state root. Used by vessel-runc's
/// command line and, later, by the engine. Policy is decided here and in <see cref="PlanBuilder"/>;
/// the executor carries it out.</summary>
public sealed class ContainerRuntime(string root, Action<string>? warn = null)
{
    private readonly ContainerStore _store = new(root);
    private readonly Action<string> _warn = warn ?? (_ => { });
    // The mount table is read once per runtime instance: one vessel-runc command, or the daemon's lifetime.
    private readonly Lazy<CgroupLayout> _layout = new(CgroupLayout.Detect);

    public ContainerStore Store => _store;

    /// <summary>Creates the container: the init is left blocked on the exec fifo until <see cref="Start"/>.
    /// Returns the init's pid. On any failure nothing is left behind.</summary>
    public int Create(CreateOptions options)
    {
        ContainerStore.ValidateId(options.Id);
        var bundle = Path.GetFullPath(options.Bundle);
        if (!Directory.Exists(bundle)) throw new RuntimeException($"bundle {bundle} does not exist");
        var spec = RuntimeJson.ReadSpec(Path.Combine(bundle, "config.json"));
        PlanBuilder.Validate(spec, bundle);
        if (spec.Process!.Terminal && options.ConsoleSocket is null && options.Console is null)
            throw new RuntimeException("process.terminal is true: use --console-socket (or run in the foreground with a terminal)");
        if (!spec.Process.Terminal && options.ConsoleSocket is not null)
            throw new RuntimeException("--console-socket is given but process.terminal is false");

        _store.Claim(options.Id);
        Cgroup? cgroup = null;
        ExecutorSession? session = null;
        var created = false;
        try
        {
            var cgroupsPath = string.IsNullOrEmpty(spec.Linux!.CgroupsPath) ? $"/vessel/{options.Id}" : spec.Linux.CgroupsPath;
            var layout = _layout.Value;
            cgroup = Cgroup.Open(layout, cgroupsPath);
            CreateCgroup(cgroup);
            cgroup.Apply(DeviceRules.Effective(spec));

            var fifoPath = _store.FifoOf(options.Id);
            SafeFd.MakeFifo(fifoPath, 0x192); // 0622: the init may no longer be root when it opens it
            using var fifo = SafeFd.OpenPath(fifoPath);
            using var consoleFd = options.Console is null && options.ConsoleSocket is not null ? UnixSocket.Connect(options.ConsoleSocket) : null;
            var console = options.Console ?? consoleFd;
            var fds = new ExecutorFds(options.PreserveFds, console is not null, Fifo: true);
            var planned = PlanBuilder.ForInit(spec, bundle, fds, CgroupViewOf(layout, cgroup), options.NoPivot, _warn);

            session = ExecutorSession.Start(planned.Plan, fds, console, fifo, spec.Process.Args![0], options.Monitor, options.Stdio);
            var pid = session.Pid;
            options.Spawned?.Invoke(pid);
            var stored = new StoredContainer
            {
                Id = options.Id, Pid = pid, StartTime = Processes.StartTime(pid) ?? 0, Bundle = bundle,
                Rootfs = PlanBuilder.RootfsPath(spec, bundle), Created = DateTime.UtcNow, Owner = "root",
                CgroupsPath = cgroupsPath, Config = spec,
            };
            _store.Save(stored);
            if (planned.NewUserNamespace) WriteIdMaps(pid, planned.UidMappings, planned.GidMappings);
            cgroup.AddProcess(pid);

            var state = StateOf(stored, ContainerStatus.Created); // what create-time hooks are shown, as crun and runtime-tools expect
            session.Go(state);
            session.WaitFor("created", onHooks: () =>
            {
                var json = JsonSerializer.Serialize(state, RuntimeJson.Default.ContainerState);
                Hooks.Run(spec.Hooks?.Prestart, "prestart", json);
                Hooks.Run(spec.Hooks?.CreateRuntime, "createRuntime", json);
            });
            if (options.PidFile is not null) WritePidFile(options.PidFile, pid);
            created = true;
            return pid;
        }
        finally
        {
            session?.Dispose();
            if (!created) Discard(options.Id, cgroup);
            if (!created && options.Monitor is { Pid: > 0 } m) ExecutorSession.ReapMonitor(m.Pid);
        }
    }

    /// <summary>Lets a created container's init exec its process, then runs the poststart hooks.</summary>
    public void Start(string id)
    {
        var c = _store.Load(id);
        var status = StatusOf(c);
        if (status != ContainerStatus.Created)
            throw new RuntimeException($"cannot start a container that has {Describe(status)}");
        using (var fifo = SafeFd.OpenReadOnly(_store.FifoOf(id), nonBlocking: true))
        {
            // The init writes one byte when it is released, and its write end closes when it execs (close-on-exec):
            // waiting for that end-of-file puts the poststart hooks after the process is executed.
            Span<byte> one = stackalloc byte[1];
            bool released = false;
            while (true)
            {
                if (fifo.WaitReadable(100))
                {
                    int n = fifo.Read(one);
                    if (n == 1) { released = true; continue; }
                    if (n == 0 && released) break;
                }
                if (!Processes.IsAlive(c.Pid, c.StartTime))
                {
                    if (released) break; // it was released and has already exited: its exit is the container's
                    throw new RuntimeException($"cannot start container {id}: its init process has exited");
                }
            }
        }
        File.Delete(_store.FifoOf(id));
        // The spec: a failing poststart hook is logged, the other hooks and the container go on.
        Hooks.RunAll(c.Config.Hooks?.Poststart, "poststart", StateJson(c, ContainerStatus.Running), _warn);
    }

    public ContainerState State(string id)
    {
        var c = _store.Load(id);
        return StateOf(c, StatusOf(c));
    }

    public IEnumerable<ContainerState> List() =>
        _store.Ids().Select(id =>
        {
            try { return State(id); }
            catch (RuntimeException) { return null; }
        }).OfType<ContainerState>();

    public void Kill(string id, int signal, bool all)
    {
        var c = _store.Load(id);
        var status = StatusOf(c);
        if (status == ContainerStatus.Stopped && !all) throw new RuntimeException("container not running");
        if (all)
        {
            var cgroup = OpenCgroup(c);
            if (signal == Signals.SIGKILL && status == ContainerStatus.Paused) cgroup.Thaw();
            foreach (var pid in cgroup.Processes()) Processes.Kill(pid, signal);
            if (status == ContainerStatus.Paused && signal != Signals.SIGKILL) foreach (var pid in cgroup.Processes()) Processes.Kill(pid, Signals.SIGCONT);
            return;
        }
        try
        {
            Processes.Signal(c.Pid, c.StartTime, signal);
        }
        catch (LinuxException e) when (e.ErrorNumber == Errno.ESRCH)
        {
            throw new RuntimeException("container not running");
        }
        // A frozen process does not die of SIGKILL until thawed (cgroup v1); runc thaws for SIGKILL too.
        if (signal == Signals.SIGKILL && status == ContainerStatus.Paused) OpenCgroup(c).Thaw();
    }

    /// <summary>Deletes a stopped container; one that is created, running or paused only with
    /// <paramref name="force"/> (the runtime-spec's rule; runc also deletes created ones, and containerd
    /// follows a refused delete with delete --force anyway).</summary>
    public void Delete(string id, bool force)
    {
        // As runc: `delete --force` of a container that does not exist succeeds. podman calls it after every
        // failed create (whose container is already gone) and logs an error if it fails.
        ContainerStore.ValidateId(id);
        if (force && !_store.Exists(id)) return;
        var c = _store.Load(id);
        var status = StatusOf(c);
        if (status != ContainerStatus.Stopped && !force)
            throw new RuntimeException($"cannot delete container {id} that is not stopped: {StatusName(status)}");
        var cgroup = OpenCgroup(c);
        if (status != ContainerStatus.Stopped || cgroup.Processes().Count > 0)
            KillAllAndWait(c, cgroup);
        Hooks.RunAll(c.Config.Hooks?.Poststop, "poststop", StateJson(c, ContainerStatus.Stopped), _warn); // failures only warn
        cgroup.Destroy();
        _store.Remove(id);
    }

    public IReadOnlyList<int> Pids(string id) => OpenCgroup(_store.Load(id)).Processes();

    public void Pause(string id)
    {
        var c = _store.Load(id);
        var status = StatusOf(c);
        if (status != ContainerStatus.Running) throw new RuntimeException($"container {id} is not running");
        OpenCgroup(c).Freeze();
    }

    public void Resume(string id)
    {
        var c = _store.Load(id);
        if (StatusOf(c) != ContainerStatus.Paused) throw new RuntimeException($"container {id} is not paused");
        OpenCgroup(c).Thaw();
    }

    public void Update(string id, LinuxResources resources)
    {
        var c = _store.Load(id);
        if (StatusOf(c) == ContainerStatus.Stopped) throw new RuntimeException($"container {id} is stopped");
        OpenCgroup(c).Apply(resources);
        c.Config.Linux ??= new LinuxSpec();
        c.Config.Linux.Resources = resources;
        _store.Save(c);
    }

    public CgroupStats Stats(string id)
    {
        var c = _store.Load(id);
        if (StatusOf(c) == ContainerStatus.Stopped) throw new RuntimeException("container not running");
        return OpenCgroup(c).Stats();
    }

    public bool IsStopped(string id) => StatusOf(_store.Load(id)) == ContainerStatus.Stopped;

    public RuntimeSpec Config(string id) => _store.Load(id).Config;

    /// <summary>Starts <paramref name="options"/>.Process inside a running container. Returns its pid;
    /// it is a child of this process (CLONE_PARENT), so the caller may wait for it.</summary>
    public int Exec(ExecOptions options)
    {
        var c = _store.Load(options.Id);
        var status = StatusOf(c);
        if (status == ContainerStatus.Stopped) throw new RuntimeException("cannot exec in a stopped container");
        if (status == ContainerStatus.Paused) throw new RuntimeException("cannot exec in a paused container");
        if (options.Process.Terminal && options.ConsoleSocket is null && options.Console is null)
            throw new RuntimeException("a terminal was asked for: use --console-socket, or run exec in the foreground from a terminal");
        using var consoleFd = options.Console is null && options.ConsoleSocket is not null ? UnixSocket.Connect(options.ConsoleSocket) : null;
        var console = options.Console ?? consoleFd;
        var fds = new ExecutorFds(options.PreserveFds, console is not null, Fifo: false);
        var plan = PlanBuilder.ForExec(c.Config, options.Process, c.Pid, fds, _warn);
        using var session = ExecutorSession.Start(plan, fds, console, null, options.Process.Args![0], stdio: options.Stdio);
        var pid = session.Pid;
        try
        {
            OpenCgroup(c).AddProcess(pid);
            session.Go(StateOf(c, status));
            session.WaitFor(expected: null); // end of stream: the process exec'd
        }
        catch
        {
            // It is our child (CLONE_PARENT) and sits in the container's pid namespace: an unreaped zombie there
            // keeps that namespace's init from ever finishing its exit, so wait for it, not just poll once.
            Processes.Kill(pid, Signals.SIGKILL);
            Processes.WaitExit(pid);
            throw;
        }
        if (options.PidFile is not null) WritePidFile(options.PidFile, pid);
        return pid;
    }

    private void KillAllAndWait(StoredContainer c, Cgroup cgroup)
    {
        if (cgroup.FreezerState == FreezerState.Frozen) cgroup.Thaw();
        var deadline = Environment.TickCount64 + 10_000;
        while (true)
        {
            var pids = cgroup.Processes();
            var initAlive = Processes.IsAlive(c.Pid, c.StartTime);
            if (pids.Count == 0 && !initAlive) return;
            if (initAlive) Processes.Kill(c.Pid, Signals.SIGKILL);
            foreach (var pid in pids) Processes.Kill(pid, Signals.SIGKILL);
            Processes.TryWaitExit(c.Pid); // reaps it when it is our child (run, or create in the same process)
            if (Environment.TickCount64 > deadline)
                throw new RuntimeException($"container {c.Id}: processes {string.Join(' ', pids)} did not die after SIGKILL");
            Thread.Sleep(10);
        }
    }

    /// <summary>Removes everything a failed create made: processes, cgroup, state dir.</summary>
    private void Discard(string id, Cgroup? cgroup)
    {
        try
        {
            if (_store.Exists(id))
            {
                var c = _store.Load(id);
                if (cgroup is not null) KillAllAndWait(c, cgroup);
                else if (Processes.IsAlive(c.Pid, c.StartTime)) Processes.Kill(c.Pid, Signals.SIGKILL);
                Processes.TryWaitExit(c.Pid);
            }
            else if (cgroup is not null)
                foreach (var pid in cgroup.Processes()) Processes.Kill(pid, Signals.SIGKILL);
            cgroup?.Destroy();
        }
        catch (Exception e) when (e is RuntimeException or IOException)
        {
            _warn($"cleaning up after a failed create: {e.Message}");
        }
        finally
        {
            try { _store.Remove(id); } catch (DirectoryNotFoundException) { }
        }
    }

    /// <summary>mkdir -p of the cgroup can lose a race with another container's delete pruning the shared
    /// (empty) parent; trying again is the whole fix.</summary>
    private static void CreateCgroup(Cgroup cgroup)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                cgroup.Create();
                return;
            }
            catch (Exception e) when (attempt < 5 && e is DirectoryNotFoundException or CgroupException)
            {
                Thread.Sleep(1);
            }
        }
    }

    private Cgroup OpenCgroup(StoredContainer c) => Cgroup.Open(_layout.Value, c.CgroupsPath);

    private static CgroupView CgroupViewOf(CgroupLayout layout, Cgroup cgroup)
    {
        if (layout.Mode == CgroupMode.V2)
            return new CgroupView(true, cgroup.HostPaths.Values.Take(1).Select(d => ("", d)).ToList());
        // One entry per hierarchy, named like its mount point (cpu,cpuacct co-mounted stays one dir).
        var hierarchies = cgroup.HostPaths
            .Where(p => p.Key != "unified")
            .GroupBy(p => p.Value)
            .Select(g => (Name: HierarchyName(g.Key, g.First().Key), HostDir: g.Key))
            .DistinctBy(h => h.Name)
            .OrderBy(h => h.Name, StringComparer.Ordinal)
            .ToList();
        return new CgroupView(false, hierarchies);
    }

    /// <summary>/sys/fs/cgroup/cpu,cpuacct/vessel/x → "cpu,cpuacct": the first path component under /sys/fs/cgroup.</summary>
    private static string HierarchyName(string hostDir, string controller)
    {
        const string prefix = "/sys/fs/cgroup/";
        return hostDir.StartsWith(prefix, StringComparison.Ordinal) ? hostDir[prefix.Length..].Split('/')[0] : controller;
    }

    public ContainerStatus StatusOf(StoredContainer c)
    {
        if (c.Pid <= 0 || !Processes.IsAlive(c.Pid, c.StartTime)) return ContainerStatus.Stopped;
        if (File.Exists(_store.FifoOf(c.Id))) return ContainerStatus.Created;
        try
        {
            if (OpenCgroup(c).FreezerState is FreezerState.Frozen or FreezerState.Freezing) return ContainerStatus.Paused;
        }
        catch (IOException) { }
        return ContainerStatus.Running;
    }

    private static string Describe(ContainerStatus status) => status switch
    {
        ContainerStatus.Stopped => "status stopped",
        ContainerStatus.Running => "status running",
        ContainerStatus.Paused => "status paused",
        ContainerStatus.Creating => "status creating",
        _ => "status created",
    };

    public static string StatusName(ContainerStatus status) => status.ToString().ToLowerInvariant();

    private ContainerState StateOf(StoredContainer c, ContainerStatus status) => new()
    {
        Id = c.Id, Pid = status == ContainerStatus.Stopped ? 0 : c.Pid, Status = StatusName(status), Bundle = c.Bundle,
        Rootfs = c.Rootfs, Created = c.Created, Owner = c.Owner, Annotations = c.Config.Annotations,
    };

    private string StateJson(StoredContainer c, ContainerStatus? status = null) =>
        JsonSerializer.Serialize(StateOf(c, status ?? StatusOf(c)), RuntimeJson.Default.ContainerState);

    private static void WriteIdMaps(int pid, IReadOnlyList<IdMapping> uids, IReadOnlyList<IdMapping> gids)
    {
        static string Format(IReadOnlyList<IdMapping> maps) => string.Concat(maps.Select(m => $"{m.ContainerId} {m.HostId} {m.Size}\n"));
        File.WriteAllText($"/proc/{pid}/uid_map", Format(uids));
        File.WriteAllText($"/proc/{pid}/gid_map", Format(gids));
    }

    private static void WritePidFile(string path, int pid)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}");
        File.WriteAllText(temp, pid.ToString());
        File.Move(temp, full, overwrite: true);
    }
}

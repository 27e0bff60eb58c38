using Vessel.Api;
using Vessel.Linux;
using Vessel.Runtime.Cgroups;

namespace Vessel.Engine.Containers;

/// <summary>Restart policies (docker's restartmanager: back-off from 100 ms doubling to a minute, back to 100 ms
/// after a run of 10 s), stop signals and timeouts, restart, and OOM kills read from the cgroup at exit.</summary>
public sealed partial class ContainerService
{
    /// <summary>The back-off of each container the policy restarts (in memory, as docker's).</summary>
    private readonly Dictionary<string, TimeSpan> _backoff = new(StringComparer.Ordinal);
    private readonly Lazy<CgroupLayout?> _cgroups = new(() =>
    {
        try { return CgroupLayout.Detect(); }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException) { return null; }
    });

    /// <summary>True if the kernel OOM-killed a process of the container's cgroup (read before the cgroup goes).</summary>
    private bool ReadOomKilled(ContainerRecord c)
    {
        try
        {
            if (_cgroups.Value is not { } layout) return false;
            var cg = Cgroup.Open(layout, "/vessel/" + c.Id);
            return cg.Exists && cg.Stats().Memory.OomKillCount > 0;
        }
        catch (Exception e) when (e is IOException or CgroupException or UnauthorizedAccessException or FormatException or Vessel.Runtime.Spec.SpecException)
        {
            _log($"container {c.Id[..12]}: reading the OOM count: {e.Message}");
            return false;
        }
    }

    private static RestartPolicy PolicyOf(ContainerRecord c)
    {
        try { return RestartPolicy.Parse(c.Config.Request.Restart); }
        catch (EngineException) { return RestartPolicy.No; }
    }

    /// <summary>After an exit was recorded: schedules a restart if the policy says so (status restarting meanwhile).</summary>
    private void MaybeRestart(ContainerRecord c)
    {
        var policy = PolicyOf(c);
        if (c.Config.Request.AutoRemove || !policy.ShouldRestart(c.State.ExitCode ?? 0, c.State.StoppedByUser, c.State.RestartCount)) return;
        TimeSpan ran = c.State.StartedAt is { } s && c.State.FinishedAt is { } f ? f - s : TimeSpan.Zero;
        TimeSpan wait;
        lock (_lock)
        {
            wait = RestartPolicy.NextBackoff(_backoff.GetValueOrDefault(c.Id), ran);
            _backoff[c.Id] = wait;
        }
        ScheduleRestart(c.Id, wait);
    }

    private void ScheduleRestart(string id, TimeSpan wait)
    {
        var c = Find(id);
        if (c is null) return;
        Save(c with { State = c.State with { Status = ContainerStatus.Restarting } });
        _ = Task.Run(async () =>
        {
            try { await Task.Delay(wait, _stop.Token); }
            catch (OperationCanceledException) { return; } // the daemon stops: the next one restarts it
            var now = Find(id);
            if (now is null || now.State.Status != ContainerStatus.Restarting) return; // stopped, started or removed meanwhile
            try { StartRecord(now, now.State.RestartCount + 1); }
            catch (Exception e) when (e is EngineException or IOException)
            {
                _log($"container {id[..12]}: restart: {e.Message}");
                var failed = Find(id);
                if (failed is not null && failed.State.Status != ContainerStatus.Running) MaybeRestart(failed with { State = failed.State with { RestartCount = failed.State.RestartCount + 1 } });
            }
        });
    }

    /// <summary>At daemon start: containers that are not running and that docker would start again (always, even if
    /// a user stopped them; unless-stopped unless a user did; on-failure after a failure with retries left).</summary>
    private void RestartAtDaemonStart()
    {
        List<ContainerRecord> list;
        lock (_lock) list = _all.Values.ToList();
        foreach (var c in list)
        {
            if (c.State.Status == ContainerStatus.Restarting) { ScheduleRestart(c.Id, TimeSpan.Zero); continue; }
            if (c.State.Status != ContainerStatus.Exited || !c.State.StartedBefore || c.Config.Request.AutoRemove) continue;
            if (!PolicyOf(c).RestartAtDaemonStart(c.State.ExitCode ?? 0, c.State.StoppedByUser, c.State.RestartCount)) continue;
            _log($"container {c.Id[..12]}: started again by its restart policy ({PolicyOf(c)})");
            Save(c with { State = c.State with { StoppedByUser = false } });
            ScheduleRestart(c.Id, TimeSpan.Zero);
        }
    }

    /// <summary>Marks a container as stopped by a user (restart policies leave it alone); a pending restart is cancelled.
    /// True if the container was waiting for a restart (then it is exited now and there is nothing to signal).</summary>
    private bool MarkStoppedByUser(ContainerRecord c)
    {
        var now = Find(c.Id) ?? c;
        bool restarting = now.State.Status == ContainerStatus.Restarting;
        Save(now with { State = now.State with { StoppedByUser = true, Status = restarting ? ContainerStatus.Exited : now.State.Status } });
        lock (_lock) _backoff.Remove(c.Id);
        return restarting;
    }

    /// <summary>--stop-signal, else the image's STOPSIGNAL, else SIGTERM.</summary>
    private static int StopSignalOf(ContainerRecord c)
    {
        string? s = c.Config.Request.StopSignal is { Length: > 0 } r ? r : c.Config.ImageStopSignal;
        if (string.IsNullOrEmpty(s)) return Signals.SIGTERM;
        try { return ParseSignal(s); }
        catch (EngineException) { return Signals.SIGTERM; }
    }

    /// <summary>docker restart: stop (if running), then start as a user would (the restart count goes back to 0).</summary>
    public async Task RestartAsync(string idOrName, int? timeoutSeconds, string? signal, CancellationToken ct)
    {
        var c = Get(idOrName);
        if (c.State.Status is ContainerStatus.Running or ContainerStatus.Restarting) await StopAsync(c.Id, timeoutSeconds, ct, signal);
        Start(c.Id);
        _events.Publish("container", "restart", c.Id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
    }
}

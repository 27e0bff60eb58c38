using System.Text;
using Vessel.Api;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>Health checks (docker's HEALTHCHECK / --health-cmd): one loop per running container that has a check.
/// Every interval the probe runs inside the container through the runtime's exec (as `exec` does), its stdout and
/// stderr captured (at most 4 KiB), killed after the timeout. Status: starting → healthy on a success, unhealthy after
/// `retries` failures in a row; failures during the start period don't count. The last 5 probes are kept. Health
/// lives in memory: after a daemon restart a re-adopted container starts over at "starting".</summary>
public sealed partial class ContainerService
{
    private const int MaxProbeOutput = 4096;
    private readonly Dictionary<string, ContainerHealth> _health = new(StringComparer.Ordinal);

    private ContainerHealth? HealthOf(ContainerRecord c)
    {
        lock (_lock) return _health.GetValueOrDefault(c.Id);
    }

    /// <summary>Starts the health loop of a running container, if it has a check.</summary>
    private void StartHealthCheck(ContainerRecord c)
    {
        HealthSettings? settings;
        try { settings = HealthSettings.Resolve(c.Config.Request.Healthcheck, c.Config.ImageHealthcheck); }
        catch (EngineException) { settings = null; }
        if (settings is null) return;
        int monitor = c.State.MonitorPid;
        DateTimeOffset started = c.State.StartedAt ?? DateTimeOffset.UtcNow;
        lock (_lock) _health[c.Id] = new ContainerHealth { Status = "starting" };
        _ = Task.Run(() => HealthLoopAsync(c.Id, monitor, started, settings));
    }

    private async Task HealthLoopAsync(string id, int monitor, DateTimeOffset started, HealthSettings s)
    {
        while (true)
        {
            try { await Task.Delay(s.Interval, _stop.Token); }
            catch (OperationCanceledException) { return; }
            var c = Find(id);
            if (c is null || c.State.Status != ContainerStatus.Running || c.State.MonitorPid != monitor) return; // this run is over
            if (c.State.Paused) continue;
            HealthProbe probe;
            try { probe = await ProbeAsync(c, s); }
            catch (Exception e) when (e is RuntimeException or IOException or LinuxException or EngineException)
            {
                probe = new HealthProbe(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, -1, e.Message);
            }
            if (Find(id) is not { State.Status: ContainerStatus.Running } now || now.State.MonitorPid != monitor) return;
            string? changed = null;
            lock (_lock)
            {
                var h = _health.GetValueOrDefault(id) ?? new ContainerHealth { Status = "starting" };
                var log = h.Log.Append(probe).TakeLast(5).ToList();
                bool inStartPeriod = probe.Start - started < s.StartPeriod;
                ContainerHealth next;
                if (probe.ExitCode == 0) next = h with { Status = "healthy", FailingStreak = 0, Log = log };
                else if (inStartPeriod) next = h with { Log = log };
                else
                {
                    int streak = h.FailingStreak + 1;
                    next = h with { FailingStreak = streak, Status = streak >= s.Retries ? "unhealthy" : h.Status, Log = log };
                }
                _health[id] = next;
                if (next.Status != h.Status) changed = next.Status;
            }
            if (changed is not null) _events.Publish("container", "health_status: " + changed, id, c.Name, new Dictionary<string, string> { ["image"] = c.Image });
        }
    }

    /// <summary>One probe: the check's command in the container (its user, environment and working directory).</summary>
    private async Task<HealthProbe> ProbeAsync(ContainerRecord c, HealthSettings s)
    {
        RuntimeSpec config = _runtime.Config(c.Id);
        var process = new ProcessSpec
        {
            Args = s.Command, Env = c.Config.Env, Cwd = c.Config.WorkingDir, User = config.Process!.User,
            Capabilities = config.Process.Capabilities, Rlimits = config.Process.Rlimits, NoNewPrivileges = config.Process.NoNewPrivileges,
        };
        var start = DateTimeOffset.UtcNow;
        var (r, w) = SafeFd.Pipe();
        using var devNull = SafeFd.Open("/dev/null", 0);
        int pid;
        try { pid = _runtime.Exec(new ExecOptions(c.Id, process, Stdio: [devNull, w, w])); }
        catch (RuntimeException e) when (e.ExitCode is 126 or 127)
        {
            r.Dispose();
            return new HealthProbe(start, DateTimeOffset.UtcNow, e.ExitCode, e.Message);
        }
        catch
        {
            r.Dispose();
            throw;
        }
        finally { w.Dispose(); }
        using (r)
        {
            var output = Task.Run(() =>
            {
                using var fs = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(r.DangerousGetHandle(), ownsHandle: false), FileAccess.Read, 1, isAsync: false);
                var buf = new MemoryStream();
                var chunk = new byte[4096];
                int n;
                while ((n = fs.Read(chunk)) > 0) if (buf.Length < MaxProbeOutput) buf.Write(chunk, 0, (int)Math.Min(n, MaxProbeOutput - buf.Length));
                return Encoding.UTF8.GetString(buf.ToArray());
            });
            var exit = Task.Run(() => Processes.WaitExit(pid));
            bool timedOut = await Task.WhenAny(exit, Task.Delay(s.Timeout)) != exit;
            if (timedOut)
            {
                Processes.Kill(pid, Signals.SIGKILL);
                await exit;
                return new HealthProbe(start, DateTimeOffset.UtcNow, -1, $"Health check exceeded timeout ({s.Timeout.TotalSeconds:0.###}s)");
            }
            int code = await exit;
            // Whatever the probe left running (a background child) may keep the pipe open: don't wait for it long.
            string text = await Task.WhenAny(output, Task.Delay(1000)) == output ? await output : "";
            return new HealthProbe(start, DateTimeOffset.UtcNow, code, text);
        }
    }
}

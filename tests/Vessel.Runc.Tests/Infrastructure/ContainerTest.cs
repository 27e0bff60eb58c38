using System.Text.Json.Nodes;

namespace Vessel.Runc.Tests.Infrastructure;

/// <summary>One state root (--root /run/vessel-test-*) per test class; removed at the end, and it must be empty by then.</summary>
public sealed class StateRoot : IDisposable
{
    public string Path { get; } = $"/run/vessel-test-{Guid.NewGuid().ToString("N")[..8]}";

    public void Dispose()
    {
        if (!Directory.Exists(Path)) return;
        var left = Directory.GetFileSystemEntries(Path);
        Directory.Delete(Path, recursive: true);
        if (left.Length > 0) throw new InvalidOperationException($"state root {Path} still held: {string.Join(", ", left)}");
    }
}

/// <summary>Base of the container tests: makes ids and bundles, remembers them, and in Dispose (which runs
/// even when the test failed) force-deletes every container it made and fails the test if anything of
/// them is left: state dir, cgroup dirs, processes, mounts on the host.</summary>
public abstract class ContainerTest : IDisposable
{
    protected TestEnvironment Env { get; }
    protected StateRoot State { get; }
    protected RuncCli Runc { get; }
    private readonly List<string> _ids = [];
    private readonly List<string> _dirs = [];

    protected ContainerTest(TestEnvironment env, StateRoot state)
    {
        Env = env;
        State = state;
        Runc = new RuncCli(env, state.Path);
    }

    protected static CancellationToken Cancel => TestContext.Current.CancellationToken;

    protected string NewId(string tag = "c")
    {
        var id = $"vt-{tag}-{Guid.NewGuid().ToString("N")[..8]}";
        _ids.Add(id);
        return id;
    }

    /// <summary>A fresh temp dir (deleted in Dispose).</summary>
    protected string NewTempDir(string tag = "tmp")
    {
        var dir = TempDirs.Create(tag);
        _dirs.Add(dir);
        return dir;
    }

    protected Bundle NewBundle(params string[] args)
    {
        var id = NewId();
        var bundle = new Bundle(Env, id, NewTempDir("bundle"));
        if (args.Length > 0) bundle.Args(args);
        return bundle;
    }

    /// <summary>`run` in the foreground: exits with the container's status, stdio captured.</summary>
    protected RuncResult Run(Bundle b, params string[] flags) => Runc.Invoke(["run", .. flags, "--bundle", b.Save().Dir, b.Id]);

    protected RuncResult Create(Bundle b, params string[] flags) => Runc.Invoke(["create", .. flags, "--bundle", b.Save().Dir, b.Id]);

    /// <summary>A running container whose init waits (and exits on SIGTERM, which a bare pid 1 `sleep` would ignore).</summary>
    protected Bundle StartSleeper(Action<Bundle>? configure = null)
    {
        var b = NewBundle().Shell("trap 'exit 0' TERM; sleep 100000 & wait");
        configure?.Invoke(b);
        Create(b).Ok();
        Runc["start", b.Id].Ok();
        Assert.Equal("running", Status(b.Id));
        return b;
    }

    protected JsonObject StateOf(string id)
    {
        var r = Runc["state", id].Ok();
        return JsonNode.Parse(r.Stdout)!.AsObject();
    }

    protected string Status(string id) => (string)StateOf(id)["status"]!;

    protected void WaitForStatus(string id, string status) =>
        Eventually(() => Status(id) == status, $"container {id} to be {status}");

    /// <summary>Polls until the condition holds. The deadline only turns a hang into a failure; it is not what we test.</summary>
    protected static void Eventually(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"gave up waiting for {what}");
            Thread.Sleep(20);
        }
    }

    /// <summary>What is left of container <paramref name="id"/> on the host.</summary>
    protected List<string> LeftoversOf(string id)
    {
        var left = new List<string>();
        var stateDir = System.IO.Path.Combine(State.Path, id);
        if (Directory.Exists(stateDir)) left.Add($"state dir {stateDir}");
        left.AddRange(HostCgroups.DirsOf(id).Where(Directory.Exists).Select(d => $"cgroup {d}"));
        left.AddRange(HostCgroups.ProcessesOf(id).Select(p => $"process {p}"));
        return left;
    }

    public virtual void Dispose()
    {
        var problems = new List<string>();
        foreach (var id in _ids)
        {
            var r = Runc["delete", "--force", id];
            if (r.ExitCode != 0 && !r.Stderr.Contains("does not exist")) problems.Add($"delete --force {id}: {r.Stderr.Trim()}");
            var deadline = DateTime.UtcNow.AddSeconds(10);
            List<string> left;
            while ((left = LeftoversOf(id)).Count > 0 && DateTime.UtcNow < deadline) Thread.Sleep(50);
            problems.AddRange(left.Select(l => $"{id}: {l}"));
            // Clean what the runtime did not, so one bug does not cascade into other tests.
            foreach (var pid in HostCgroups.ProcessesOf(id)) Native.kill(pid, 9);
            foreach (var d in HostCgroups.DirsOf(id).Where(Directory.Exists))
            {
                try { Directory.Delete(d); } catch (IOException) { }
            }
            var stateDir = System.IO.Path.Combine(State.Path, id);
            if (Directory.Exists(stateDir)) Directory.Delete(stateDir, recursive: true);
        }
        foreach (var dir in _dirs)
        {
            problems.AddRange(TempDirs.MountsUnder(dir).Select(m => $"host mount left: {m}"));
            TempDirs.Delete(dir);
        }
        GC.SuppressFinalize(this);
        Assert.True(problems.Count == 0, "left behind:\n" + string.Join("\n", problems));
    }
}

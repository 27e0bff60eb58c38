using System.Diagnostics;
using System.Runtime.InteropServices;
using Vessel.Api;
using Vessel.Engine.Containers;
using Vessel.Engine.Events;
using Vessel.Engine.Images;
using Vessel.Engine.Networks;
using Vessel.Engine.Machines;
using Vessel.Engine.Operations;
using Vessel.Engine.State;
using Vessel.Engine.Volumes;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Registry;
using Vessel.Images.Snapshots;
using Vessel.Runtime.Cgroups;

namespace Vessel.Engine;

public sealed record EngineOptions
{
    /// <summary>State: content store, refs, vessel.db.</summary>
    public string Root { get; init; } = ApiInfo.DefaultRoot;
    /// <summary>Runtime state: sockets, pid file; gone after a reboot.</summary>
    public string RunRoot { get; init; } = ApiInfo.DefaultRunRoot;
    /// <summary>The API socket (reported by system info).</summary>
    public string Socket { get; init; } = ApiInfo.DefaultSocket;
    /// <summary>One line per event worth logging.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Registries (host[:port]) reached over plain HTTP although not on loopback (loopback always is).</summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = [];
    /// <summary>Where <c>login</c> keeps credentials (docker's config.json format); null: CredentialStore.DefaultPath.</summary>
    public string? AuthFile { get; init; }
    /// <summary>Networks: the nftables table, the default bridge and its subnet.</summary>
    public NetworkOptions Network { get; init; } = new();
}

/// <summary>The composition root: owns the paths, the services and their lifetime. Data flows API → Engine →
/// Images/Runtime → Linux; nothing here knows about HTTP.</summary>
public sealed class Engine : IAsyncDisposable
{
    public EngineOptions Options { get; }
    public EventBus Events { get; }
    public OperationManager Operations { get; }
    public Database Database { get; }
    public ContentStore Content { get; }
    public ReferenceStore Refs { get; }
    public ImageService Images { get; }
    public SnapshotStore Snapshots { get; }
    public LeaseStore Leases { get; }
    public ImageTransfer Transfer { get; }
    public ContainerService Containers { get; }
    public NetworkService Networks { get; }
    public VolumeService Volumes { get; }
    public MachineService Machines { get; }
    public Build.BuildService Builds { get; }
    private readonly Lazy<RuntimeInfo> _runtime;

    private Engine(EngineOptions options, Database db)
    {
        Options = options;
        Database = db;
        Events = new EventBus();
        Operations = new OperationManager(options.Log);
        Content = new ContentStore(options.Root);
        Refs = new ReferenceStore(Content);
        Images = new ImageService(Content, Refs, Events);
        Snapshots = new SnapshotStore(options.Root);
        Leases = new LeaseStore(Content, Snapshots);
        var registry = new RegistryOptions
        {
            InsecureRegistries = options.InsecureRegistries,
            Credentials = new CredentialStore(options.AuthFile),
            UserAgent = $"vessel/{ApiInfo.Version}",
        };
        Transfer = new ImageTransfer(Content, Refs, Snapshots, Leases, Images, Events, registry, options.Log);
        Volumes = new VolumeService(options.Root, db, Events, options.Log);
        Networks = new NetworkService(db, Events, options.Network, options.Log);
        Containers = new ContainerService(options.Root, options.RunRoot, db, Events, Images, Content, Refs, Snapshots, Leases, Volumes, Networks, options.Log);
        Networks.ContainerDir = id => Path.Combine(Containers.Dir, id);
        Volumes.Users = Containers.VolumeUsers;
        Transfer.VolumeUsage = Volumes.Usage;
        Transfer.ContainerUsage = Containers.Usage;
        Machines = new MachineService(options.Root, options.RunRoot, db, Events, options.Log, Networks);
        Builds = new Build.BuildService(options.Root, options.RunRoot, Content, Refs, Snapshots, Leases, Events, PullForBuild, options.Log)
        {
            Networks = Networks,
        };
        _runtime = new Lazy<RuntimeInfo>(ProbeRuntime);
    }

    public static Engine Open(EngineOptions options)
    {
        options = options with { Root = Path.GetFullPath(options.Root), RunRoot = Path.GetFullPath(options.RunRoot) };
        Directory.CreateDirectory(options.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(options.RunRoot, (UnixFileMode)0x1ed);
        var engine = new Engine(options, Database.Open(options.Root));
        engine.Containers.Recover();
        engine.Machines.Recover();
        engine.Builds.Recover();
        return engine;
    }

    /// <summary>A build's FROM of an image that is not here: an ordinary pull operation, awaited.</summary>
    private async Task PullForBuild(string name, CancellationToken ct)
    {
        Operations.Operation op = Transfer.StartPull(Operations, name, null);
        using (ct.Register(() => op.Cts.Cancel())) await op.Completion;
        if (op.Info().Error is { } err) throw new EngineException(err.Code, err.Message);
    }

    public static string Kernel => ReadTrimmed("/proc/sys/kernel/osrelease") ?? "unknown";

    /// <summary>Go's names (amd64, arm64, ...), as docker reports them.</summary>
    public static string Arch => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64", Architecture.Arm64 => "arm64", Architecture.X86 => "386", Architecture.Arm => "arm",
        Architecture.RiscV64 => "riscv64", Architecture.S390x => "s390x", Architecture.Ppc64le => "ppc64le",
        Architecture.LoongArch64 => "loong64", var a => a.ToString().ToLowerInvariant(),
    };

    public static VersionResponse Version() => new(ApiInfo.Version, ApiInfo.ApiVersion, "linux", Arch, Kernel);

    public SystemInfoResponse Info()
    {
        string cgroups;
        try { cgroups = CgroupLayout.Detect().Mode.ToString().ToLowerInvariant(); }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException) { cgroups = "none"; }
        return new SystemInfoResponse
        {
            DaemonPid = Environment.ProcessId, Version = ApiInfo.Version, Socket = Options.Socket, StateRoot = Options.Root,
            RunRoot = Options.RunRoot, CgroupMode = cgroups, Kernel = Kernel, Os = "linux", Arch = Arch, Runtime = _runtime.Value,
            Storage = "overlay", Images = Images.Count, Containers = (int)Database.Count("containers"),
            Machines = Machines.Count, Accel = new AccelInfo(Machines.Accel.Accel, Machines.Accel.Reason),
        };
    }

    /// <summary>vessel-runc beside this executable (as `make` installs them): its version from `--version`.</summary>
    private static RuntimeInfo ProbeRuntime()
    {
        string? dir = Path.GetDirectoryName(Environment.ProcessPath);
        string? path = dir is null ? null : Path.Combine(dir, "vessel-runc");
        if (path is null || !File.Exists(path)) return new RuntimeInfo("vessel-runc", null, null);
        try
        {
            var psi = new ProcessStartInfo(path, "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using Process p = Process.Start(psi)!;
            string first = p.StandardOutput.ReadLine() ?? "";
            if (!p.WaitForExit(5000)) { try { p.Kill(); } catch (InvalidOperationException) { } }
            const string prefix = "vessel-runc version ";
            return new RuntimeInfo("vessel-runc", first.StartsWith(prefix, StringComparison.Ordinal) ? first[prefix.Length..].Trim() : null, path);
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return new RuntimeInfo("vessel-runc", null, path);
        }
    }

    private static string? ReadTrimmed(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (IOException) { return null; }
    }

    public async ValueTask DisposeAsync()
    {
        await Operations.CancelAllAsync(TimeSpan.FromSeconds(10));
        Containers.Dispose();
        Networks.Dispose();
        Machines.Dispose();
        Database.Dispose();
    }
}

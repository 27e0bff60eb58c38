using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Vessel.Images.Build;
using Vessel.Images.Build.Containerfile;
using Vessel.Images.Content;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;

using Vessel.Linux;

namespace Vessel.Engine.Build;

/// <summary>One build: runs the stages the target needs, in order, step by step, against the cache.
/// Every layer step (RUN, COPY, ADD) happens on an overlay of the parent's snapshots with a fresh upper dir,
/// which becomes the step's layer (<see cref="Vessel.Images.Diff.LayerDiff"/>) and, renamed, the snapshot
/// the next step mounts. Metadata steps only change the config (history entries with empty_layer).</summary>
internal sealed partial class Builder
{
    private static readonly string[] DefaultShell = ["/bin/sh", "-c"];

    private readonly BuildService _svc;
    private readonly string _contextDir;
    private readonly BuildOptions _o;
    private readonly Action<BuildEvent> _progress;
    private readonly CancellationToken _ct;
    private readonly string _work;
    private readonly string _buildId;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<BuildCacheRecord> _records = [];
    private readonly Dictionary<int, State> _done = [];
    private ParsedContainerfile _file = null!;
    private ShellWords _words = null!;
    private BuildArgs _args = null!;
    private Dictionary<string, string?> _meta = null!;
    private IgnoreRules _ignore = new();
    private int _step;
    private int _runs;
    public int Steps { get; private set; }
    public int CachedSteps { get; private set; }

    public Builder(BuildService svc, string buildId, string work, string contextDir, BuildOptions o, Action<BuildEvent> progress, CancellationToken ct)
    {
        _svc = svc; _buildId = buildId; _work = work; _contextDir = contextDir; _o = o; _progress = progress; _ct = ct;
    }

    public IReadOnlyList<BuildCacheRecord> Records => _records;

    /// <summary>The state of a stage as it is being built.</summary>
    internal sealed class State
    {
        public required int Index;
        public required string Label;
        public ImageConfig Config = null!;
        public List<Descriptor> Layers = [];
        public List<Digest> DiffIds = [];
        public List<History> History = [];
        public string Key = "";
        public Dictionary<string, string?> Args = new(StringComparer.Ordinal);
        public List<string> Shell = [.. DefaultShell];
        public bool CmdSet;
        public DateTimeOffset LastCreated = DateTimeOffset.UnixEpoch;
        public int K;
        public int N;

        public ContainerConfig Runtime => Config.Config ?? new ContainerConfig();
        public void SetRuntime(Func<ContainerConfig, ContainerConfig> f) => Config = Config with { Config = f(Runtime) };
        public IReadOnlyList<Digest> Chain => DiffIds.Count == 0 ? [] : SnapshotStore.ChainIds(DiffIds);
    }

    // ---- the whole build ---------------------------------------------------------------------------------

    public (State Final, ImageConfig Config) Run(string dockerfileText, string dockerfileName)
    {
        int n = Begin($"[internal] load build definition from {dockerfileName}");
        _file = Parser.Parse(dockerfileText, dockerfileName);
        _words = new ShellWords(_file.Escape);
        foreach (string w in _file.Warnings) _progress(new BuildEvent("warning", 0, w));
        Done(n);
        if (IgnoreRules.FileIn(_contextDir) is string ignoreName)
        {
            n = Begin($"[internal] load {ignoreName}");
            try { _ignore = IgnoreRules.Parse(File.ReadAllText(Path.Combine(_contextDir, ignoreName))); }
            catch (FormatException e) { throw new BuildException($"{ignoreName}: {e.Message}"); }
            Done(n);
        }
        _args = new BuildArgs(_o.BuildArgs);
        _meta = _args.Meta(_file.MetaArgs, _words, Engine.Arch);

        Stage target = _file.Stages[^1];
        if (!string.IsNullOrEmpty(_o.Target))
            target = _file.FindStage(_o.Target) ?? throw new BuildException($"target stage \"{_o.Target}\" could not be found");
        var needed = Needed(target);
        State final = null!;
        foreach (Stage s in _file.Stages)
        {
            if (!needed.Contains(s.Index)) continue;
            _ct.ThrowIfCancellationRequested();
            final = BuildStage(s);
            _done[s.Index] = final;
            if (s == target) break;
        }
        foreach (string unused in _args.Unused)
            _progress(new BuildEvent("warning", 0, $"one or more build-args [{unused}] were not consumed"));
        return (final, final.Config);
    }

    /// <summary>The stages the target depends on (FROM stage, COPY --from=stage), transitively.</summary>
    private HashSet<int> Needed(Stage target)
    {
        var need = new HashSet<int>();
        var todo = new Stack<Stage>([target]);
        while (todo.Count > 0)
        {
            Stage s = todo.Pop();
            if (!need.Add(s.Index)) continue;
            string image = ExpandMeta(s.From.Image, s.From.Pos);
            if (StageRef(image, s.Index) is Stage dep) todo.Push(dep);
            foreach (Instruction i in s.Instructions.Concat(s.Instructions.OfType<OnbuildInstruction>().Select(o => o.Parsed)))
                if (i is CopyInstruction { From: string from } && StageRef(from, s.Index) is Stage d2) todo.Push(d2);
        }
        return need;
    }

    private Stage? StageRef(string name, int before)
    {
        Stage? s = _file.FindStage(name);
        return s is not null && s.Index < before ? s : null;
    }

    private string ExpandMeta(string raw, SourcePos pos) => BuildArgs.Expand(_words, raw, n => _meta.GetValueOrDefault(n), pos);

    // ---- stages ------------------------------------------------------------------------------------------

    private State BuildStage(Stage stage)
    {
        string label = _file.Stages.Count == 1 && stage.Name is null ? "" : (stage.Name ?? $"stage-{stage.Index}") + " ";
        var st = new State { Index = stage.Index, Label = label };
        string image = ExpandMeta(stage.From.Image, stage.From.Pos);
        if (image.Length == 0) throw new ContainerfileException(stage.From.Pos, $"base name ({stage.From.Image}) should not be blank");
        IReadOnlyList<string> triggers = [];
        bool cached;
        if (image.Equals("scratch", StringComparison.OrdinalIgnoreCase))
        {
            st.Config = new ImageConfig { Architecture = Engine.Arch, Os = "linux", RootFs = new RootFs { Type = "layers", DiffIds = [] }, Config = new ContainerConfig() };
            st.Key = Hash("scratch");
            cached = true;
        }
        else if (StageRef(image, stage.Index) is Stage dep)
        {
            State parent = _done[dep.Index];
            st.Config = parent.Config;
            st.Layers = [.. parent.Layers];
            st.DiffIds = [.. parent.DiffIds];
            st.History = [.. parent.History];
            st.Key = parent.Key;
            st.Shell = [.. parent.Shell];
            st.LastCreated = parent.LastCreated;
            cached = true;
        }
        else
        {
            ResolvedImage baseImage;
            int pullStep = 0;
            var pullClock = Stopwatch.StartNew();
            (baseImage, cached) = _svc.ResolveBase(_buildId, image, _o.Pull, stage.From.Pos, _ct, () => pullStep = Begin($"[internal] pull {image}"));
            if (pullStep > 0) _progress(new BuildEvent("done", pullStep, Elapsed: pullClock.Elapsed));
            st.Config = baseImage.Config;
            st.Layers = baseImage.Manifest.Layers.Select(l => l with { MediaType = MediaTypes.ToOci(l.MediaType) }).ToList();
            st.DiffIds = [.. baseImage.Config.RootFs.DiffIds];
            st.History = [.. baseImage.Config.History ?? []];
            st.Key = Hash("image", baseImage.ManifestDescriptor.Digest.ToString());
            if (baseImage.Config.Config?.Shell is { Count: > 0 } sh) st.Shell = [.. sh];
            st.LastCreated = baseImage.Config.Created ?? DateTimeOffset.UnixEpoch;
        }
        if (st.Config.Config?.OnBuild is { Count: > 0 } ob) triggers = ob;
        // ONBUILD triggers of the base run first, as if written right after FROM.
        var steps = new List<Instruction>();
        foreach (string t in triggers)
        {
            ParsedContainerfile p;
            try { p = Parser.Parse("FROM scratch\n" + t, $"ONBUILD trigger of {image}"); }
            catch (ContainerfileException e) { throw new BuildException($"{stage.From.Pos}: ONBUILD trigger of {image}: {e.Reason}"); }
            steps.AddRange(p.Stages[0].Instructions);
        }
        steps.AddRange(stage.Instructions);
        st.N = 1 + steps.Count(IsExecStep);
        int no = Begin($"[{label}1/{st.N}] FROM {image}");
        // As BuildKit: an image without PATH gets the default one, so RUN finds its programs.
        if (!(st.Runtime.Env ?? []).Any(e => e.StartsWith("PATH=", StringComparison.Ordinal)))
            st.SetRuntime(c => c with { Env = [Vessel.Engine.Containers.ContainerSpec.DefaultPath, .. c.Env ?? []] });
        st.Config = st.Config with { Config = st.Runtime with { OnBuild = null } };
        st.K = 1;
        Finish(no, cached);

        foreach (Instruction i in steps)
        {
            _ct.ThrowIfCancellationRequested();
            try { Step(st, i); }
            catch (ContainerfileException) { throw; }
            catch (BuildException e) when (!e.Message.StartsWith(i.Pos.File + ":", StringComparison.Ordinal))
            {
                throw new BuildException($"{i.Pos}: {e.Message}");
            }
        }
        return st;
    }

    private static bool IsExecStep(Instruction i) => i is RunInstruction or CopyInstruction or ValueInstruction { Keyword: "WORKDIR" };

    private void Step(State st, Instruction i)
    {
        switch (i)
        {
            case RunInstruction run: RunStep(st, run); break;
            case CopyInstruction copy: CopyStep(st, copy); break;
            case ValueInstruction { Keyword: "WORKDIR" } wd: WorkdirStep(st, wd); break;
            default: Metadata(st, i); break;
        }
    }

    // ---- metadata steps ----------------------------------------------------------------------------------

    private Func<string, string?> Lookup(State st) => name =>
    {
        string prefix = name + "=";
        foreach (string e in Enumerable.Reverse(st.Runtime.Env ?? []))
            if (e.StartsWith(prefix, StringComparison.Ordinal)) return e[prefix.Length..];
        if (st.Args.TryGetValue(name, out string? v)) return v;
        return null;
    };

    private string Expand(State st, string raw, SourcePos pos) => BuildArgs.Expand(_words, raw, Lookup(st), pos);

    private IReadOnlyList<string> ExpandWords(State st, string raw, SourcePos pos)
    {
        try { return _words.Words(raw, Lookup(st)); }
        catch (ShellWordException e) { throw new ContainerfileException(pos, e.Message); }
    }

    private void Metadata(State st, Instruction i)
    {
        string createdBy;
        switch (i)
        {
            case KeyValueInstruction { Keyword: "ENV" } env:
            {
                // Every value expands against the env from before the instruction, as Docker: after ENV A=1,
                // `ENV A=2 B=$A` sets B=1.
                var pairs = env.Pairs.Select(p => (Key: Expand(st, p.Key, i.Pos), Value: Expand(st, p.Value, i.Pos))).ToList();
                foreach (var (key, v) in pairs)
                    st.SetRuntime(c => c with { Env = SetEnv(c.Env, key, v) });
                createdBy = "ENV " + string.Join(' ', pairs.Select(p => p.Key + "=" + p.Value));
                break;
            }
            case KeyValueInstruction label:
            {
                var pairs = new List<string>();
                foreach (var (k, raw) in label.Pairs)
                {
                    string key = Expand(st, k, i.Pos), v = Expand(st, raw, i.Pos);
                    if (key.Length == 0) throw new ContainerfileException(i.Pos, "LABEL names can not be blank");
                    pairs.Add($"{key}={v}");
                    st.SetRuntime(c => c with { Labels = new Dictionary<string, string>(c.Labels ?? new Dictionary<string, string>()) { [key] = v } });
                }
                createdBy = "LABEL " + string.Join(' ', pairs);
                break;
            }
            case ArgInstruction arg:
            {
                var parts = new List<string>();
                foreach (var (name, raw) in arg.Args)
                {
                    string? def = raw is null ? null : Expand(st, raw, i.Pos);
                    string? v = _args.Declare(name, def, _meta);
                    st.Args[name] = v;
                    // The history names the declaration (its default), not the value given, as Docker.
                    parts.Add(def is null ? name : $"{name}={def}");
                }
                createdBy = "ARG " + string.Join(' ', parts);
                break;
            }
            case ValueInstruction { Keyword: "USER" } user:
            {
                string u = Expand(st, user.Value, i.Pos);
                st.SetRuntime(c => c with { User = u });
                createdBy = "USER " + u;
                break;
            }
            case ValueInstruction { Keyword: "STOPSIGNAL" } sig:
            {
                string s = Expand(st, sig.Value, i.Pos);
                if (!Signals.TryParse(s, out _)) throw new ContainerfileException(i.Pos, $"STOPSIGNAL: invalid signal: {s}");
                st.SetRuntime(c => c with { StopSignal = s });
                createdBy = "STOPSIGNAL " + s;
                break;
            }
            case ValueInstruction maintainer: // MAINTAINER
                st.Config = st.Config with { Author = maintainer.Value };
                createdBy = "MAINTAINER " + maintainer.Value;
                break;
            case CommandInstruction { Keyword: "CMD" } cmd:
            {
                var argv = cmd.Command.Argv(st.Shell).ToList();
                st.SetRuntime(c => c with { Cmd = argv });
                st.CmdSet = true;
                createdBy = "CMD " + Json(argv);
                break;
            }
            case CommandInstruction ep:
            {
                var argv = ep.Command.Argv(st.Shell).ToList();
                bool keepCmd = st.CmdSet;
                st.SetRuntime(c => c with { Entrypoint = argv, Cmd = keepCmd ? c.Cmd : null });
                createdBy = "ENTRYPOINT " + Json(argv);
                break;
            }
            case ListInstruction { Keyword: "EXPOSE" } expose:
            {
                var ports = new List<string>();
                foreach (string raw in expose.Items)
                    foreach (string p in ExpandWords(st, raw, i.Pos))
                        ports.AddRange(ParsePorts(p, i.Pos));
                st.SetRuntime(c =>
                {
                    var d = new Dictionary<string, EmptyObject>(c.ExposedPorts ?? new Dictionary<string, EmptyObject>());
                    foreach (string p in ports) d[p] = new EmptyObject();
                    return c with { ExposedPorts = d };
                });
                createdBy = "EXPOSE " + string.Join(' ', ports);
                break;
            }
            case ListInstruction volume:
            {
                var vols = volume.Literal ? volume.Items.Select(v => Expand(st, v, i.Pos)).ToList()
                    : volume.Items.SelectMany(v => ExpandWords(st, v, i.Pos)).ToList();
                if (vols.Any(v => v.Trim().Length == 0)) throw new ContainerfileException(i.Pos, "VOLUME specified can not be an empty string");
                st.SetRuntime(c =>
                {
                    var d = new Dictionary<string, EmptyObject>(c.Volumes ?? new Dictionary<string, EmptyObject>());
                    foreach (string v in vols) d[v] = new EmptyObject();
                    return c with { Volumes = d };
                });
                createdBy = "VOLUME " + Json(vols);
                break;
            }
            case ShellInstruction shell:
                st.Shell = [.. shell.Shell];
                st.SetRuntime(c => c with { Shell = shell.Shell.ToList() });
                createdBy = "SHELL " + Json(shell.Shell);
                break;
            case HealthcheckInstruction hc:
            {
                static long? Ns(TimeSpan? t) => t is TimeSpan x ? x.Ticks * 100 : null;
                var h = new HealthConfig
                {
                    Test = hc.Test.ToList(), Interval = Ns(hc.Interval), Timeout = Ns(hc.Timeout), StartPeriod = Ns(hc.StartPeriod),
                    StartInterval = Ns(hc.StartInterval), Retries = hc.Retries,
                };
                st.SetRuntime(c => c with { Healthcheck = h });
                createdBy = "HEALTHCHECK " + (hc.Test[0] == "NONE" ? "NONE" : Json(hc.Test));
                break;
            }
            case OnbuildInstruction onbuild:
                st.SetRuntime(c => c with { OnBuild = [.. c.OnBuild ?? [], onbuild.Trigger] });
                createdBy = "ONBUILD " + onbuild.Trigger;
                break;
            default:
                throw new ContainerfileException(i.Pos, $"{i.Keyword} is not supported here");
        }
        st.Key = Hash(st.Key, "meta", createdBy);
        st.History.Add(new History { Created = st.LastCreated, CreatedBy = createdBy, EmptyLayer = true, Comment = "vessel build" });
    }

    private static List<string> SetEnv(IReadOnlyList<string>? env, string key, string value)
    {
        var list = env?.ToList() ?? [];
        int at = list.FindIndex(e => e.StartsWith(key + "=", StringComparison.Ordinal) || e == key);
        if (at >= 0) list[at] = key + "=" + value; else list.Add(key + "=" + value);
        return list;
    }

    /// <summary>EXPOSE 80, 80/udp, 8000-8002/tcp → "80/tcp", "80/udp", "8000/tcp", "8001/tcp", "8002/tcp".</summary>
    internal static IEnumerable<string> ParsePorts(string spec, SourcePos pos)
    {
        string proto = "tcp";
        string ports = spec;
        int slash = spec.IndexOf('/');
        if (slash >= 0) { proto = spec[(slash + 1)..].ToLowerInvariant(); ports = spec[..slash]; }
        if (proto is not ("tcp" or "udp" or "sctp")) throw new ContainerfileException(pos, $"EXPOSE {spec}: invalid protocol \"{proto}\"");
        int dash = ports.IndexOf('-');
        static int Port(string s, string spec, SourcePos pos) =>
            int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p is > 0 and <= 65535 ? p
                : throw new ContainerfileException(pos, $"EXPOSE {spec}: invalid port \"{s}\"");
        int lo = Port(dash < 0 ? ports : ports[..dash], spec, pos), hi = dash < 0 ? lo : Port(ports[(dash + 1)..], spec, pos);
        if (hi < lo) throw new ContainerfileException(pos, $"EXPOSE {spec}: invalid range");
        for (int p = lo; p <= hi; p++) yield return $"{p}/{proto}";
    }

    // ---- helpers -----------------------------------------------------------------------------------------

    internal static string Json(IEnumerable<string> items)
    {
        using var ms = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(ms, new System.Text.Json.JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartArray();
            foreach (string s in items) w.WriteStringValue(s);
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    internal static string Hash(params string[] parts)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string p in parts)
        {
            h.AppendData(Encoding.UTF8.GetBytes(p));
            h.AppendData([0]);
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>Starts a step of the build that is not an instruction (exporting the image).</summary>
    public int BeginExtra(string name) => Begin(name);

    private int Begin(string name)
    {
        int n = ++_step;
        _progress(new BuildEvent("step", n, name, At: _clock.Elapsed));
        return n;
    }

    private readonly Dictionary<int, long> _started = [];

    private void Done(int n) => _progress(new BuildEvent("done", n, Elapsed: TimeSpan.Zero));

    private void Finish(int n, bool cached)
    {
        Steps++;
        if (cached) CachedSteps++;
        _progress(cached ? new BuildEvent("cached", n) : new BuildEvent("done", n));
    }

    private void Finish(int n, Stopwatch sw)
    {
        Steps++;
        _progress(new BuildEvent("done", n, Elapsed: sw.Elapsed));
    }
}

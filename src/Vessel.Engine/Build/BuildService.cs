using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.Images;
using Vessel.Engine.Operations;
using Vessel.Images.Build;
using Vessel.Images.Build.Containerfile;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Layers;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;
using Vessel.Linux;
using Vessel.Runtime;

namespace Vessel.Engine.Build;

/// <summary>Builds images from a Containerfile and a context (docs/build.md). A build works under
/// <c>ROOT/builds/ID/</c> (the unpacked context, one directory per step with its overlay mount), holds a build
/// lease on everything it made or uses until the image is tagged, and leaves nothing behind when it fails:
/// no image, no mounts, no containers. RUN steps run as containers of the runtime (their own runtime state
/// root, <c>RUNROOT/build-runtime</c>).</summary>
public sealed class BuildService
{
    private readonly ContentStore _content;
    private readonly ReferenceStore _refs;
    private readonly EventBus _events;
    private readonly Action<string> _log;
    private readonly Func<string, CancellationToken, Task> _pull;

    internal ContentStore Content => _content;
    internal SnapshotStore Snapshots { get; }
    internal LeaseStore Leases { get; }
    internal BuildCache Cache { get; }
    internal ContainerRuntime Runtime { get; }
    public string Dir { get; }

    /// <param name="pull">Pulls an image by name (the engine's pull, as an operation of its own).</param>
    public BuildService(string root, string runRoot, ContentStore content, ReferenceStore refs, SnapshotStore snapshots, LeaseStore leases,
        EventBus events, Func<string, CancellationToken, Task> pull, Action<string>? log)
    {
        _content = content;
        _refs = refs;
        Snapshots = snapshots;
        Leases = leases;
        _events = events;
        _pull = pull;
        _log = log ?? (_ => { });
        Cache = new BuildCache(content);
        Dir = Path.Combine(root, "builds");
        Directory.CreateDirectory(Dir, (UnixFileMode)0x1c0);
        Runtime = new ContainerRuntime(Path.Combine(runRoot, "build-runtime"), w => _log("build runtime: " + w));
    }

    /// <summary>The networks: RUN steps join the default bridge (null: the host's network namespace).</summary>
    public Vessel.Engine.Networks.NetworkService? Networks { get; init; }

    internal void Log(string line) => _log(line);

    internal string LeaseId(string buildId) => "build-" + buildId;

    /// <summary>After a crash: mounts, step containers, work dirs and leases of builds that were running.</summary>
    public void Recover()
    {
        foreach (string id in Runtime.Store.Ids().ToList())
        {
            try { Runtime.Delete(id, force: true); }
            catch (Exception e) when (e is RuntimeException or IOException) { _log($"build: removing step container {id}: {e.Message}"); }
        }
        var mounts = Mounts.MountPoints();
        foreach (string dir in Directory.EnumerateDirectories(Dir).ToList())
        {
            foreach (string m in mounts.Where(m => m.StartsWith(dir + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length))
                Builder.Unmount(m);
            Builder.RemoveDir(dir);
            try { Leases.Delete(LeaseId(Path.GetFileName(dir))); } catch (ArgumentException) { }
        }
    }

    /// <summary>Reads a context tar (plain, gzip or zstd; what the CLI and docker send) into a new build directory
    /// and starts the build as an operation. The directory is removed when the build ends.</summary>
    public async Task<Operation> StartFromTarAsync(OperationManager operations, Stream contextTar, BuildOptions options, CancellationToken ct)
    {
        Validate(options);
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        string work = Path.Combine(Dir, id);
        string context = Path.Combine(work, "context");
        Directory.CreateDirectory(work, (UnixFileMode)0x1c0);
        try
        {
            // The request body is read asynchronously into a file (Kestrel refuses synchronous reads), then extracted.
            string tar = Path.Combine(work, "context.tar");
            await using (var file = new FileStream(tar, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                await contextTar.CopyToAsync(file, 1 << 20, ct);
            await Task.Run(() =>
            {
                using (var input = File.OpenRead(tar))
                    LayerExtractor.Extract(input, context, "build context", null, new ExtractionOptions { Whiteouts = WhiteoutMode.Apply });
                File.Delete(tar);
            }, ct);
        }
        catch (Exception e)
        {
            Builder.RemoveDir(work);
            if (e is LayerException le) throw EngineException.Invalid($"build context: {le.Message}");
            throw;
        }
        string target = options.Tags.FirstOrDefault() ?? "image";
        return operations.Start("image.build", target, async ctx =>
        {
            BuildResult r = await Task.Run(() => Build(id, work, context, options, e => Report(ctx, e), ctx.Cancel));
            return JsonSerializer.SerializeToElement(new BuildResultResponse(r.Id, r.Digest, [.. r.Names], r.Steps, r.Cached), BuildJson.Default.BuildResultResponse);
        });
    }

    /// <summary>The build events as operation progress: action = kind, item = "#N", message = the text,
    /// current = elapsed milliseconds (done) or the time into the step (log).</summary>
    private static void Report(OperationContext ctx, BuildEvent e)
    {
        long ms = (long)((e.Elapsed ?? e.At ?? TimeSpan.Zero).TotalMilliseconds);
        ctx.Report(e.Kind, e.Step > 0 ? "#" + e.Step.ToString(CultureInfo.InvariantCulture) : null, ms, 0, e.Text);
    }

    private static void Validate(BuildOptions o)
    {
        foreach (string t in o.Tags)
        {
            // Docker's reference grammar (lowercase repository, tag of [\w][\w.-]{0,127}), then the store's own rules.
            if (t.Contains('@')) throw EngineException.Invalid($"invalid tag \"{t}\": a tag cannot contain a digest");
            if (!Vessel.Images.References.ImageRef.TryParse(t, out _, out string? why))
                throw EngineException.Invalid($"invalid tag \"{t}\": {why}");
            try { ReferenceStore.ValidateName(ImageService.WithDefaultTag(t)); }
            catch (ArgumentException e) { throw EngineException.Invalid($"invalid tag {t}: {e.Message}"); }
        }
    }

    /// <summary>Builds from a context directory the caller owns, writing into <paramref name="work"/> (removed at the end).</summary>
    public BuildResult Build(string id, string work, string contextDir, BuildOptions options, Action<BuildEvent> progress, CancellationToken ct)
    {
        Validate(options);
        string leaseId = LeaseId(id);
        Leases.Create(leaseId, LeaseKind.Build, requireExisting: false, expiresIn: TimeSpan.FromDays(1),
            labels: new Dictionary<string, string> { ["build"] = id });
        try
        {
            (string text, string name) = Definition(contextDir, options);
            var builder = new Builder(this, id, work, contextDir, options, progress, ct);
            Builder.State final;
            try { (final, _) = builder.Run(text, name); }
            catch (ContainerfileException e) { throw EngineException.Invalid(e.Message); }
            catch (BuildException e) { throw EngineException.Invalid(e.Message); }

            var sw = System.Diagnostics.Stopwatch.StartNew();
            int no = builder.BeginExtra("exporting to image");
            ContainerConfig runtime = final.Runtime;
            if (options.Labels.Count > 0)
            {
                var labels = new Dictionary<string, string>(runtime.Labels ?? new Dictionary<string, string>());
                foreach (var (k, v) in options.Labels) labels[k] = v;
                runtime = runtime with { Labels = labels };
            }
            DateTimeOffset created = final.History.Count > 0 ? final.History.Max(h => h.Created ?? DateTimeOffset.UnixEpoch) : DateTimeOffset.UnixEpoch;
            ImageConfig config = final.Config with
            {
                Created = created,
                Config = runtime,
                RootFs = new RootFs { Type = "layers", DiffIds = final.DiffIds },
                History = final.History,
            };
            WrittenImage image;
            using (StoreLock.Shared(_content.Root))
            {
                image = ImageWriter.WriteConfig(_content, config, final.Layers);
                Leases.Add(leaseId, [image.Manifest.Digest]);
                Cache.AddOwner(builder.Records, image.Manifest.Digest);
            }
            progress(new BuildEvent("log", no, $"writing image {image.Id} done"));
            var names = new List<string>();
            foreach (string t in options.Tags)
            {
                string n = ImageService.WithDefaultTag(t);
                _refs.Tag(n, image.Manifest);
                names.Add(n);
                progress(new BuildEvent("log", no, $"naming to {n} done"));
                _events.Publish("image", "build", image.Manifest.Digest.ToString(), n);
            }
            if (names.Count == 0)
            {
                // An untagged build stays reachable by its id, as load does for images without names.
                _refs.Tag(image.Id.ToString(), image.Manifest);
                names.Add(image.Id.ToString());
                _events.Publish("image", "build", image.Manifest.Digest.ToString(), image.Id.ToString());
            }
            progress(new BuildEvent("done", no, Elapsed: sw.Elapsed));
            return new BuildResult(image.Id.ToString(), image.Manifest.Digest.ToString(), names, builder.Steps, builder.CachedSteps);
        }
        finally
        {
            foreach (string m in Mounts.MountPoints().Where(m => m.StartsWith(work + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length))
                Builder.Unmount(m);
            Builder.RemoveDir(work);
            Leases.Delete(leaseId);
        }
    }

    /// <summary>The Containerfile: given text, the named file in the context, or Containerfile / Dockerfile.</summary>
    private static (string Text, string Name) Definition(string contextDir, BuildOptions o)
    {
        if (o.DockerfileContent is not null) return (o.DockerfileContent, string.IsNullOrEmpty(o.Dockerfile) || o.Dockerfile == "-" ? "Containerfile" : o.Dockerfile);
        string? name = o.Dockerfile;
        if (string.IsNullOrEmpty(name))
            name = File.Exists(Path.Combine(contextDir, "Containerfile")) ? "Containerfile" : "Dockerfile";
        string rel = IgnoreRules.Clean(name.TrimStart('/'));
        if (rel.StartsWith("..", StringComparison.Ordinal)) throw EngineException.Invalid($"the Containerfile {name} is outside the build context");
        string path = InRoot.Resolve(contextDir, "/" + rel, followLast: true);
        if (!File.Exists(path)) throw EngineException.Invalid($"cannot find {name} in the build context (give one with -f)");
        if (new FileInfo(path).Length > 4 * 1024 * 1024) throw EngineException.Invalid($"{name} is larger than 4 MiB");
        string text = File.ReadAllText(path);
        if (o.DockerfileFromContextThenRemove)
        {
            File.Delete(path);
            return (text, "Containerfile");
        }
        return (text, name);
    }

    /// <summary>A base image by name: the local one, or pulled when missing (or always with <paramref name="pull"/>).
    /// Returns whether it was already there.</summary>
    internal (ResolvedImage Image, bool Local) ResolveBase(string buildId, string name, bool pull, SourcePos pos, CancellationToken ct, Action? pulling = null)
    {
        var resolver = new ImageResolver(_content, _refs);
        ResolvedImage? Find()
        {
            var all = _refs.List();
            ImageReference? r = all.FirstOrDefault(x => x.Name == name) ?? all.FirstOrDefault(x => x.Name == ImageService.WithDefaultTag(name));
            if (r is null && Vessel.Images.References.ImageRef.TryParse(name, out var parsed, out _))
                r = all.FirstOrDefault(x => x.Name == parsed.ToString());
            if (r is null) return null;
            try { return resolver.Resolve(r.Name, r.Target); }
            catch (ContentException e) { throw new BuildException($"{pos}: base image {name}: {e.Message}"); }
        }
        ResolvedImage? found = pull ? null : Find();
        bool local = found is not null;
        if (found is null)
        {
            pulling?.Invoke();
            try { _pull(name, ct).GetAwaiter().GetResult(); }
            catch (EngineException e) { throw new BuildException($"{pos}: {name}: {e.Message}"); }
            found = Find() ?? throw new BuildException($"{pos}: {name}: not found after pulling it");
        }
        Leases.Add(LeaseId(buildId), [found.Target.Digest]);
        return (found, local);
    }
}

/// <summary>The result of a build operation (OperationInfo.Result).</summary>
public sealed record BuildResultResponse(string Id, string Digest, List<string> Names, int Steps, int Cached);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(BuildResultResponse))]
public sealed partial class BuildJson : System.Text.Json.Serialization.JsonSerializerContext;

using System.Formats.Tar;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.Operations;
using Vessel.Images.Archive;
using Vessel.Images.Build;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Layout;
using Vessel.Images.Oci;
using Vessel.Images.References;
using Vessel.Images.Registry;
using Vessel.Images.Snapshots;
using ApiPullResult = Vessel.Api.PullResult;
using ApiPushResult = Vessel.Api.PushResult;

namespace Vessel.Engine.Images;

/// <summary>Where images come from and go to: registries (pull, push, login), archives (save, load), rootfs
/// tarballs (import); and what they cost (history, disk usage, prune, garbage collection after rmi).
/// Protocol with GC (docs/images.md): everything that writes content holds <see cref="StoreLock.Shared"/> until
/// a reference protects what it wrote; a pull also holds a pull lease until its image is unpacked.</summary>
public sealed class ImageTransfer(ContentStore content, ReferenceStore refs, SnapshotStore snapshots, LeaseStore leases,
    ImageService images, EventBus events, RegistryOptions registryOptions, Action<string>? log = null)
{
    /// <summary>How long an rmi waits for running pulls/loads to release the store before leaving the sweep to
    /// the next prune.</summary>
    public TimeSpan RmiGcTimeout { get; init; } = TimeSpan.FromSeconds(20);

    private RegistryClient Client(PlatformSpec? platform = null) =>
        new(content, refs, platform is null ? registryOptions : registryOptions with { Platform = platform });

    // ---------------------------------------------------------------- pull

    public Operation StartPull(OperationManager operations, string name, string? platform)
    {
        ImageRef image = ParseRef(name);
        PlatformSpec? spec = null;
        if (!string.IsNullOrEmpty(platform))
        {
            spec = ParsePlatform(platform);
        }
        return operations.Start("image.pull", image.ToString(), ctx => PullAsync(ctx, image, spec));
    }

    private async Task<JsonElement?> PullAsync(OperationContext ctx, ImageRef image, PlatformSpec? platform)
    {
        string name = image.ToString();
        Descriptor? before = refs.List().FirstOrDefault(r => r.Name == name)?.Target;
        string leaseId = "pull-" + ctx.Id;
        // Not cancellable while it waits: a lock taken after the caller gave up would never be released.
        using StoreLock storeLock = await Task.Run(() => StoreLock.Shared(content.Root));
        leases.Create(leaseId, LeaseKind.Pull, expiresIn: TimeSpan.FromHours(6), requireExisting: false);
        try
        {
            Vessel.Images.Registry.PullResult r;
            using (RegistryClient client = Client(platform))
            {
                try { r = await client.PullAsync(image, new Reporter(ctx), ctx.Cancel); }
                catch (Exception e) when (Translate(e, ctx.Cancel) is { } ee) { throw Prefixed(ee, $"pull {name}"); }
            }
            leases.Add(leaseId, [r.Target.Digest]);
            ResolvedImage resolved;
            try { resolved = new ImageResolver(content, refs).Resolve(name, r.Target, platform); }
            catch (ContentException e) { throw EngineException.Invalid(e.Message); }
            await Task.Run(() => Unpack(ctx, resolved), ctx.Cancel);
            bool upToDate = before?.Digest == r.Target.Digest && r.BlobsDownloaded == 0;
            events.Publish("image", "pull", r.Target.Digest.ToString(), name);
            var result = new ApiPullResult
            {
                Name = name, Digest = r.Target.Digest.ToString(), Id = resolved.Manifest.Config.Digest.ToString(),
                BlobsDownloaded = r.BlobsDownloaded, BytesDownloaded = r.BytesDownloaded, UpToDate = upToDate,
            };
            return JsonSerializer.SerializeToElement(result, ApiJson.Default.PullResult);
        }
        finally
        {
            leases.Delete(leaseId);
        }
    }

    /// <summary>Unpacks each layer into its snapshot (so a later run is instant), reporting extract progress per layer.</summary>
    private void Unpack(OperationContext ctx, ResolvedImage image)
    {
        IReadOnlyList<Digest> diffIds = image.Config.RootFs.DiffIds;
        if (diffIds.Count == 0 || diffIds.Count != image.Manifest.Layers.Count) return;
        IReadOnlyList<Digest> chain = SnapshotStore.ChainIds(diffIds);
        for (int i = 0; i < chain.Count; i++)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            Descriptor layer = image.Manifest.Layers[i];
            string item = layer.Digest.ToString();
            if (snapshots.IsComplete(chain[i])) { ctx.Report("unpacked", item, layer.Size, layer.Size, layer.MediaType); continue; }
            ctx.Report("extracting", item, 0, layer.Size, layer.MediaType);
            // A prefix of the image: Unpack skips the layers below that are complete and extracts this one.
            var prefix = image with
            {
                Manifest = image.Manifest with { Layers = image.Manifest.Layers.Take(i + 1).ToList() },
                Config = image.Config with { RootFs = image.Config.RootFs with { DiffIds = diffIds.Take(i + 1).ToList() } },
            };
            try { snapshots.Unpack(content, prefix); }
            catch (Exception e) when (e is ContentException or Vessel.Images.Layers.LayerException) { throw EngineException.Invalid(e.Message); }
            ctx.Report("complete", item, layer.Size, layer.Size, layer.MediaType);
        }
    }

    /// <summary>TransferProgress → progress lines; byte updates at most every 100 ms per blob (phase changes always).</summary>
    private sealed class Reporter(OperationContext ctx) : IProgress<TransferProgress>
    {
        private readonly Dictionary<Digest, (TransferPhase Phase, long Ticks)> _last = [];

        public void Report(TransferProgress p)
        {
            long now = Environment.TickCount64;
            lock (_last)
            {
                if (_last.TryGetValue(p.Digest, out var last) && last.Phase == p.Phase && now - last.Ticks < 100 && p.Done < p.Total) return;
                _last[p.Digest] = (p.Phase, now);
            }
            ctx.Report(p.Phase.ToString().ToLowerInvariant(), p.Digest.ToString(), p.Done, p.Total, p.MediaType);
        }
    }

    // ---------------------------------------------------------------- push

    public Operation StartPush(OperationManager operations, string name)
    {
        IReadOnlyList<ImageReference> found = images.Find(name, out bool byName);
        if (!byName) throw EngineException.Invalid($"push {name}: give the image's name (registry/repository:tag), not an id");
        ImageReference local = found[0];
        ImageRef dest = ParseRef(local.Name);
        return operations.Start("image.push", dest.ToString(), async ctx =>
        {
            Digest pushed;
            using (RegistryClient client = Client())
            {
                try { pushed = await client.PushAsync(local.Target, dest, new Reporter(ctx), ctx.Cancel); }
                catch (Exception e) when (Translate(e, ctx.Cancel) is { } ee) { throw Prefixed(ee, $"push {dest}"); }
            }
            events.Publish("image", "push", pushed.ToString(), dest.ToString());
            return JsonSerializer.SerializeToElement(new ApiPushResult(dest.ToString(), pushed.ToString(), local.Target.Size), ApiJson.Default.PushResult);
        });
    }

    // ---------------------------------------------------------------- login, logout

    public async Task<LoginResponse> LoginAsync(LoginRequest req, CancellationToken ct)
    {
        string server = RegistryHost(req.Server);
        if (string.IsNullOrEmpty(req.Username)) throw EngineException.Invalid("username is required");
        if (string.IsNullOrEmpty(req.Password)) throw EngineException.Invalid("password is required");
        using RegistryClient client = Client();
        try { await client.LoginAsync(server, new RegistryCredentials(req.Username, req.Password), ct); }
        catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
        catch (Exception e) when (Translate(e, ct) is { } ee) { throw ee; }
        events.Publish("registry", "login", server, req.Username);
        return new LoginResponse(server, "Login Succeeded");
    }

    public LogoutResponse Logout(string server)
    {
        server = RegistryHost(server);
        using RegistryClient client = Client();
        bool removed = client.Logout(server);
        events.Publish("registry", "logout", server);
        return new LogoutResponse(server, removed);
    }

    /// <summary>"docker.io", "https://index.docker.io/v1/", "127.0.0.1:5000" → the credential key.</summary>
    public static string RegistryHost(string? server)
    {
        if (string.IsNullOrWhiteSpace(server)) return ImageRef.DockerHub;
        string s = server.Trim();
        if (s.StartsWith("https://", StringComparison.Ordinal)) s = s[8..];
        else if (s.StartsWith("http://", StringComparison.Ordinal)) s = s[7..];
        int slash = s.IndexOf('/');
        if (slash >= 0) s = s[..slash];
        if (s.Length == 0 || s.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '@'))
            throw EngineException.Invalid($"bad registry address {server}");
        return CredentialStore.NormalizeKey(s);
    }

    // ---------------------------------------------------------------- history

    public List<HistoryItem> History(string name)
    {
        ImageReference r = images.Find(name)[0];
        ImageInfo info;
        try { info = ImageInfo.Inspect(content, refs, r.Name); }
        catch (ContentException e) { throw EngineException.Invalid(e.Message); }
        var items = info.History.Select(h => new HistoryItem
        {
            Created = h.Created, CreatedBy = h.CreatedBy, Comment = h.Comment, EmptyLayer = h.EmptyLayer,
            Size = h.Layer?.Size ?? 0, Layer = h.Layer?.Digest.ToString(),
        }).Reverse().ToList();
        if (items.Count > 0) items[0] = items[0] with { Id = info.Id.ToString() };
        return items;
    }

    // ---------------------------------------------------------------- save, load, import

    /// <summary>Resolves what the user named to stored names before a save writes any byte.</summary>
    public IReadOnlyList<string> SaveNames(IReadOnlyList<string> names)
    {
        if (names.Count == 0) throw EngineException.Invalid("no image names given");
        var stored = new List<string>();
        foreach (string n in names)
            foreach (ImageReference r in images.Find(n))
                if (!stored.Contains(r.Name)) stored.Add(r.Name);
        return stored;
    }

    /// <summary>Writes a docker-archive or oci-archive of <paramref name="storedNames"/> (from <see cref="SaveNames"/>).</summary>
    public void Save(Stream output, IReadOnlyList<string> storedNames, string format)
    {
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        try
        {
            if (format == "oci-archive") OciArchive.Export(output, content, refs, storedNames);
            else DockerArchive.Save(output, content, refs, storedNames);
        }
        catch (Exception e) when (e is ContentException or ArchiveException) { throw EngineException.Invalid(e.Message); }
        foreach (string n in storedNames)
            events.Publish("image", "save", refs.List().FirstOrDefault(r => r.Name == n)?.Target.Digest.ToString() ?? n, n,
                new Dictionary<string, string> { ["format"] = format });
    }

    public static string SaveFormat(string? format) => format switch
    {
        null or "" or "docker-archive" or "docker" => "docker-archive",
        "oci-archive" or "oci" => "oci-archive",
        _ => throw EngineException.Invalid($"unsupported format {format}: use docker-archive or oci-archive"),
    };

    /// <summary>docker load: a docker-archive (docker save, any age that has manifest.json) or an oci-archive,
    /// told apart by their entries. The body is spooled to a temp file under the store first.</summary>
    public async Task<LoadResult> LoadAsync(Stream body, CancellationToken ct)
    {
        string ingest = Path.Combine(content.Root, "ingest");
        Directory.CreateDirectory(ingest);
        string tmp = Path.Combine(ingest, $".load-{Guid.NewGuid():N}");
        try
        {
            await using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                await body.CopyToAsync(f, 1 << 16, ct);
            if (new FileInfo(tmp).Length == 0) throw EngineException.Invalid("load: the archive is empty (nothing on stdin? use -i FILE)");
            return await Task.Run(() => LoadFile(tmp), ct);
        }
        finally
        {
            try { File.Delete(tmp); } catch (IOException) { }
        }
    }

    private LoadResult LoadFile(string path)
    {
        bool docker = false, oci = false;
        try
        {
            using var f = File.OpenRead(path);
            using var reader = new TarReader(Vessel.Images.Layers.Decompression.Open(f, out _));
            for (TarEntry? e; (e = reader.GetNextEntry()) is not null;)
            {
                string n = e.Name.TrimStart('.', '/');
                if (n == "manifest.json") docker = true;
                else if (n == "index.json") oci = true;
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw EngineException.Invalid($"load: not a tar archive: {e.Message}");
        }
        var names = new List<string>();
        var ids = new List<string>();
        try
        {
            using var input = File.OpenRead(path);
            if (docker || !oci)
            {
                foreach (LoadedImage img in DockerArchive.Load(input, content, refs, "(request body)"))
                {
                    ids.Add(img.Id.ToString());
                    foreach (string n in img.Names)
                    {
                        names.Add(n);
                        events.Publish("image", "load", img.Manifest.Digest.ToString(), n);
                    }
                }
            }
            else
            {
                LayoutImportResult r = OciArchive.Import(input, content, refs: null, repository: null, "(request body)");
                using StoreLock storeLock = StoreLock.Shared(content.Root);
                foreach (LayoutImage img in r.Images)
                {
                    string n = img.Name is null ? img.Target.Digest.ToString() : ImageService.WithDefaultTag(img.Name);
                    refs.Tag(n, img.Target);
                    names.Add(n);
                    ids.Add(TryId(n, img.Target) ?? img.Target.Digest.ToString());
                    events.Publish("image", "load", img.Target.Digest.ToString(), n);
                }
            }
        }
        catch (Exception e) when (e is ContentException or ArchiveException or InvalidDataException) { throw EngineException.Invalid(e.Message); }
        return new LoadResult(names, ids.Distinct().ToList());
    }

    private string? TryId(string name, Descriptor target)
    {
        try { return new ImageResolver(content, refs).Resolve(name, target).Manifest.Config.Digest.ToString(); }
        catch (ContentException) { return null; }
    }

    /// <summary>docker import: a rootfs tar (plain, gzip, zstd) becomes a one-layer image, named
    /// <paramref name="name"/> or, without one, by its id (an untagged, "dangling" image).</summary>
    public async Task<LoadResult> ImportAsync(Stream body, string? name, IReadOnlyList<string> changes, string? message, string? platform, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(name))
        {
            if (name.Contains('@')) throw EngineException.Invalid($"import {name}: a name cannot contain a digest");
            name = ImageService.WithDefaultTag(name);
            try { ReferenceStore.ValidateName(name); }
            catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
        }
        var options = new CommitOptions
        {
            Changes = ParseChanges(changes), Comment = string.IsNullOrEmpty(message) ? null : message,
            Platform = string.IsNullOrEmpty(platform) ? null : ParsePlatform(platform),
        };
        // The body is read synchronously by the importer: copy it through a pipe-like buffer on a worker thread.
        string ingest = Path.Combine(content.Root, "ingest");
        Directory.CreateDirectory(ingest);
        string tmp = Path.Combine(ingest, $".import-{Guid.NewGuid():N}");
        try
        {
            await using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                await body.CopyToAsync(f, 1 << 16, ct);
            if (new FileInfo(tmp).Length == 0) throw EngineException.Invalid("import: the tarball is empty");
            return await Task.Run(() =>
            {
                using var input = File.OpenRead(tmp);
                try
                {
                    using StoreLock storeLock = StoreLock.Shared(content.Root);
                    NewLayer layer = RootfsImport.CompressLayer(input, content, "rootfs (request body)");
                    WrittenImage image = ImageWriter.Write(content, null, [layer], options with
                    {
                        CreatedBy = "vessel import", Comment = options.Comment ?? "imported from a rootfs tarball",
                    });
                    string n = string.IsNullOrEmpty(name) ? image.Id.ToString() : name;
                    refs.Tag(n, image.Manifest);
                    events.Publish("image", "import", image.Manifest.Digest.ToString(), n);
                    return new LoadResult([n], [image.Id.ToString()]);
                }
                catch (Exception e) when (e is ContentException or ArchiveException or ArgumentException) { throw EngineException.Invalid(e.Message); }
            }, ct);
        }
        finally
        {
            try { File.Delete(tmp); } catch (IOException) { }
        }
    }

    /// <summary>docker's --change: CMD, ENTRYPOINT (JSON array or shell form), ENV k=v, WORKDIR, USER, EXPOSE,
    /// LABEL k=v, VOLUME, STOPSIGNAL.</summary>
    public static ConfigChanges ParseChanges(IReadOnlyList<string> changes)
    {
        var c = new ConfigChanges();
        var env = new List<string>();
        var ports = new List<string>();
        var volumes = new List<string>();
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string raw in changes)
        {
            string line = raw.Trim();
            int sp = line.IndexOfAny([' ', '\t']);
            if (sp <= 0) throw EngineException.Invalid($"--change \"{raw}\": expected INSTRUCTION ARGUMENTS");
            string instr = line[..sp].ToUpperInvariant();
            string arg = line[(sp + 1)..].Trim();
            switch (instr)
            {
                case "CMD": c = c with { Cmd = CommandForm(arg, raw) }; break;
                case "ENTRYPOINT": c = c with { Entrypoint = CommandForm(arg, raw) }; break;
                case "WORKDIR": c = c with { WorkingDir = arg }; break;
                case "USER": c = c with { User = arg }; break;
                case "STOPSIGNAL": c = c with { StopSignal = arg }; break;
                case "ENV":
                    foreach (var (k, v) in Pairs(arg, raw, allowSpaceForm: true)) env.Add($"{k}={v}");
                    break;
                case "LABEL":
                    foreach (var (k, v) in Pairs(arg, raw, allowSpaceForm: false)) labels[k] = v;
                    break;
                case "EXPOSE": ports.AddRange(arg.Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
                case "VOLUME":
                    volumes.AddRange(arg.StartsWith('[') ? JsonArray(arg, raw) : arg.Split(' ', StringSplitOptions.RemoveEmptyEntries));
                    break;
                default:
                    throw EngineException.Invalid($"--change \"{raw}\": {instr} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)");
            }
        }
        return c with
        {
            Env = env.Count > 0 ? env : null, ExposedPorts = ports.Count > 0 ? ports : null,
            Volumes = volumes.Count > 0 ? volumes : null, Labels = labels.Count > 0 ? labels : null,
        };
    }

    private static IReadOnlyList<string> CommandForm(string arg, string raw) =>
        arg.StartsWith('[') ? JsonArray(arg, raw) : ["/bin/sh", "-c", arg];

    private static List<string> JsonArray(string arg, string raw)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(arg);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new JsonException("not an array");
            return doc.RootElement.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new JsonException("not a string")).ToList();
        }
        catch (JsonException e) { throw EngineException.Invalid($"--change \"{raw}\": not a JSON array of strings: {e.Message}"); }
    }

    /// <summary>k=v k2="v 2", or (ENV only) "k v w" meaning k="v w".</summary>
    private static List<(string, string)> Pairs(string arg, string raw, bool allowSpaceForm)
    {
        var result = new List<(string, string)>();
        int firstEq = arg.IndexOf('='), firstSpace = arg.IndexOf(' ');
        if (allowSpaceForm && firstSpace > 0 && (firstEq < 0 || firstSpace < firstEq))
        {
            result.Add((arg[..firstSpace], arg[(firstSpace + 1)..].Trim()));
            return result;
        }
        int i = 0;
        while (i < arg.Length)
        {
            while (i < arg.Length && arg[i] == ' ') i++;
            if (i >= arg.Length) break;
            int eq = arg.IndexOf('=', i);
            if (eq <= i) throw EngineException.Invalid($"--change \"{raw}\": expected KEY=VALUE");
            string key = arg[i..eq];
            i = eq + 1;
            var value = new System.Text.StringBuilder();
            if (i < arg.Length && arg[i] == '"')
            {
                i++;
                while (i < arg.Length && arg[i] != '"') { if (arg[i] == '\\' && i + 1 < arg.Length) i++; value.Append(arg[i++]); }
                if (i >= arg.Length) throw EngineException.Invalid($"--change \"{raw}\": unterminated quote");
                i++;
            }
            else
                while (i < arg.Length && arg[i] != ' ') value.Append(arg[i++]);
            result.Add((key, value.ToString()));
        }
        return result;
    }

    // ---------------------------------------------------------------- disk usage, prune, gc

    /// <summary>The containers that exist and the image each uses (set by the engine once its container service
    /// exists): an image a container uses is never pruned, and rmi of it needs force, as with docker.</summary>
    public Func<IReadOnlyList<(string Id, string Name, string ImageTarget, string Dir)>> ContainerUsage { get; set; } = () => [];

    /// <summary>Count and bytes of the volumes (set by the engine).</summary>
    public Func<(int Count, long Bytes)> VolumeUsage { get; set; } = () => (0, 0);

    public DiskUsageResponse DiskUsage()
    {
        var containers = ContainerUsage();
        var volumes = VolumeUsage();
        DiskUsageReport r = Vessel.Images.Gc.DiskUsage.Compute(content, refs, snapshots, containers.ToDictionary(c => c.Id, c => c.Dir));
        var infos = ImageInfo.List(content, refs).ToDictionary(i => i.Target.Digest);
        var users = containers.GroupBy(c => c.ImageTarget).ToDictionary(g => g.Key, g => g.Count());
        var list = r.Images.Select(u => new ImageDiskUsage
        {
            Id = infos.TryGetValue(u.Target, out ImageInfo? info) ? info.Id.ToString() : u.Target.ToString(),
            Digest = u.Target.ToString(), Names = u.Names, Created = info?.Created,
            Size = u.Size, SharedSize = u.SharedSize, UniqueSize = u.UniqueSize, Containers = users.GetValueOrDefault(u.Target.ToString()),
        }).ToList();
        return new DiskUsageResponse
        {
            Images = list, ImagesSize = r.ImagesBytes, ActiveImages = list.Count(i => i.Containers > 0),
            ImagesReclaimable = list.Where(i => i.Containers == 0).Sum(i => i.UniqueSize) + r.UnreferencedBytes,
            BlobCount = r.BlobCount, BlobsSize = r.BlobsBytes, UnreferencedSize = r.UnreferencedBytes,
            SnapshotCount = r.SnapshotCount, SnapshotsSize = r.SnapshotsBytes,
            Containers = containers.Count, ContainersSize = r.Containers.Sum(c => c.Bytes), Volumes = volumes.Count, VolumesSize = volumes.Bytes,
        };
    }

    /// <summary>docker image prune: untags dangling images (those named only by their id, as load and import
    /// name untagged images) or, with <paramref name="all"/>, every image; never one a container uses. Then a GC
    /// sweep frees what nothing references any more.</summary>
    public PruneResponse Prune(bool all, string scope = "image")
    {
        var untagged = new List<string>();
        var deleted = new List<string>();
        var inUse = ContainerUsage().Select(c => c.ImageTarget).ToHashSet();
        foreach (var group in refs.List().GroupBy(r => r.Target.Digest))
        {
            bool dangling = group.All(r => IsIdName(r.Name));
            if (!all && !dangling) continue;
            if (inUse.Contains(group.Key.ToString())) continue;
            foreach (ImageReference r in group)
            {
                if (!refs.Untag(r.Name)) continue;
                if (!IsIdName(r.Name)) untagged.Add(r.Name);
                events.Publish("image", "untag", r.Target.Digest.ToString(), r.Name);
            }
            if (refs.List().Any(x => x.Target.Digest == group.Key)) continue;
            deleted.Add(group.Key.ToString());
            events.Publish("image", "delete", group.Key.ToString(), group.First().Name);
        }
        GcResult gc = Collect(null);
        events.Publish(scope, "prune", "", null, new Dictionary<string, string> { ["reclaimed"] = gc.ReclaimedBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return new PruneResponse
        {
            Untagged = untagged, Deleted = deleted, BlobsRemoved = gc.RemovedBlobs.Count, SnapshotsRemoved = gc.RemovedSnapshots.Count,
            SpaceReclaimed = gc.ReclaimedBytes,
        };
    }

    /// <summary>rmi: untags, and when an image lost its last name sweeps what no other image shares.</summary>
    public ImageDeleteResponse Remove(string name, bool force)
    {
        if (!force && refs.Resolve(name) is { } target
            && ContainerUsage().FirstOrDefault(c => c.ImageTarget == target.Digest.ToString()) is { Id: not null } user)
            throw EngineException.Conflict($"unable to remove {name}: container {user.Name} ({user.Id[..12]}) uses it; remove the container first or use -f");
        ImageDeleteResponse r = images.Remove(name, force);
        if (r.Deleted.Count == 0) return r;
        try { return r with { SpaceReclaimed = Collect(RmiGcTimeout).ReclaimedBytes }; }
        catch (ContentException e)
        {
            log?.Invoke($"rmi {name}: garbage collection skipped: {e.Message}");
            return r;
        }
    }

    public GcResult Collect(TimeSpan? lockTimeout)
    {
        var gc = new GarbageCollector(content, refs, snapshots, leases);
        try { return gc.Collect(lockTimeout is null ? GcOptions.Default : GcOptions.Default with { LockTimeout = lockTimeout }); }
        catch (ContentException e) when (lockTimeout is null) { throw EngineException.Conflict(e.Message); }
    }

    /// <summary>"sha256:&lt;64 hex&gt;": how load and import name an image that has no name.</summary>
    public static bool IsIdName(string name) => name.Length == 71 && name.StartsWith("sha256:", StringComparison.Ordinal) && Digest.TryParse(name, out _);

    // ---------------------------------------------------------------- helpers

    private static PlatformSpec ParsePlatform(string platform)
    {
        try { return PlatformSpec.Parse(platform); }
        catch (Exception e) when (e is ArgumentException or FormatException) { throw EngineException.Invalid(e.Message); }
    }

    private static ImageRef ParseRef(string name)
    {
        if (!ImageRef.TryParse(name, out ImageRef? r, out string? error)) throw EngineException.Invalid(error);
        return r.Tag is null && r.Digest is null ? r.WithTag(ImageRef.DefaultTag) : r;
    }

    private static EngineException Prefixed(EngineException e, string what) =>
        e.Message.StartsWith(what, StringComparison.Ordinal) ? e : new EngineException(e.Code, $"{what}: {e.Message}", e.InnerException);

    /// <summary>Registry and store failures → one-line engine errors with a code; null for what must propagate.</summary>
    private static EngineException? Translate(Exception e, CancellationToken ct) => e switch
    {
        OperationCanceledException when ct.IsCancellationRequested => null,
        RegistryException re => new EngineException(re.Kind switch
        {
            RegistryErrorKind.NotFound => ErrorCodes.NotFound,
            RegistryErrorKind.Unauthorized => ErrorCodes.Unauthorized,
            RegistryErrorKind.RateLimited => ErrorCodes.RateLimited,
            _ => ErrorCodes.Unavailable,
        }, re.Message, re),
        DigestMismatchException dm => new EngineException(ErrorCodes.Unavailable, dm.Message, dm),
        ContentException ce => EngineException.Invalid(ce.Message),
        Vessel.Images.Layers.LayerException le => EngineException.Invalid(le.Message),
        _ => null,
    };
}

using System.Text.Json;
using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.Operations;
using Vessel.Images.Content;
using Vessel.Images.Layout;
using Vessel.Images.Oci;

namespace Vessel.Engine.Images;

/// <summary>Images as the API sees them: names (refs) pointing at manifests/indexes in the content store.
/// Thin over Vessel.Images; every change publishes an "image" event (import, tag, untag, delete; pull when
/// the registry client lands). Removing an image's last name only unreferences it: its blobs stay in the
/// content store until garbage collection (a separate component) reclaims them.</summary>
public sealed class ImageService(ContentStore content, ReferenceStore refs, EventBus events)
{
    private readonly ImageResolver _resolver = new(content, refs);

    public int Count => refs.List().Count;

    public IReadOnlyList<ImageSummary> List()
    {
        var list = new List<ImageSummary>();
        foreach (ImageReference r in refs.List())
        {
            Details d = Describe(r.Name, r.Target);
            (string repo, string? tag) = SplitName(r.Name);
            // Load and import name an image without a name by its id: listed as <none>, like docker's dangling images.
            if (ImageTransfer.IsIdName(r.Name)) (repo, tag) = ("<none>", null);
            list.Add(new ImageSummary
            {
                Name = r.Name, Repository = repo, Tag = tag, Id = d.Id, Digest = r.Target.Digest.ToString(),
                MediaType = r.Target.MediaType, Created = d.Config?.Created, Size = d.Size,
            });
        }
        return list;
    }

    public ImageInspect Inspect(string name)
    {
        IReadOnlyList<ImageReference> found = Find(name);
        ImageReference r = found[0];
        var distinct = found.Select(f => f.Target.Digest).Distinct().ToList();
        if (distinct.Count > 1)
            throw EngineException.Conflict($"{name} is ambiguous: it matches {distinct.Count} images ({string.Join(", ", distinct.Select(x => x.Short))})");
        Details d = Describe(r.Name, r.Target);
        List<ImageReference> all = refs.List().Where(x => x.Target.Digest == r.Target.Digest).ToList();
        JsonElement? cfg = null;
        if (d.Config?.Config is not null)
        {
            using JsonDocument doc = JsonDocument.Parse(OciJson.Serialize(d.Config));
            if (doc.RootElement.TryGetProperty("config", out JsonElement c)) cfg = c.Clone();
        }
        return new ImageInspect
        {
            Id = d.Id,
            RepoTags = all.Where(x => SplitName(x.Name).Tag is not null).Select(x => x.Name).ToList(),
            RepoDigests = all.Select(x => SplitName(x.Name).Repository).Distinct().Select(repo => $"{repo}@{r.Target.Digest}").ToList(),
            Digest = r.Target.Digest.ToString(),
            MediaType = r.Target.MediaType,
            ManifestDigest = d.Resolved?.ManifestDescriptor.Digest.ToString(),
            Created = d.Config?.Created,
            Os = d.Config?.Os, Architecture = d.Config?.Architecture, Variant = d.Config?.Variant,
            Size = d.Size,
            Layers = d.Resolved?.Manifest.Layers.Select(l => l.Digest.ToString()).ToList(),
            DiffIds = d.Config?.RootFs.DiffIds.Select(x => x.ToString()).ToList(),
            Config = cfg,
            Problem = d.Problem,
        };
    }

    /// <summary>docker tag: points <paramref name="target"/> (repo adds ":latest") at what <paramref name="source"/> names.</summary>
    public void Tag(string source, string target)
    {
        IReadOnlyList<ImageReference> found = Find(source);
        if (found.Select(f => f.Target.Digest).Distinct().Count() > 1)
            throw EngineException.Conflict($"{source} is ambiguous: it matches more than one image");
        if (target.Contains('@')) throw EngineException.Invalid($"cannot tag {target}: a tag cannot contain a digest (@)");
        target = WithDefaultTag(target);
        try { ReferenceStore.ValidateName(target); }
        catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
        Descriptor d = found[0].Target;
        refs.Tag(target, d);
        events.Publish("image", "tag", d.Digest.ToString(), target);
    }

    /// <summary>docker rmi: a name is untagged; an id or digest untags every name of that image (more than one
    /// name needs <paramref name="force"/>). An image whose last name goes is reported deleted.</summary>
    public ImageDeleteResponse Remove(string name, bool force)
    {
        IReadOnlyList<ImageReference> found = Find(name, out bool byName);
        if (!byName && !force && found.Count > 1)
            throw EngineException.Conflict($"unable to delete {name} (must be forced): image is referenced by {found.Count} names ({string.Join(", ", found.Select(f => f.Name))})");
        var untagged = new List<string>();
        var deleted = new List<string>();
        foreach (ImageReference r in found)
        {
            if (!refs.Untag(r.Name)) continue;
            untagged.Add(r.Name);
            events.Publish("image", "untag", r.Target.Digest.ToString(), r.Name);
        }
        foreach (Digest digest in found.Select(f => f.Target.Digest).Distinct())
        {
            if (refs.List().Any(x => x.Target.Digest == digest)) continue;
            deleted.Add(digest.ToString());
            events.Publish("image", "delete", digest.ToString(), found.First(f => f.Target.Digest == digest).Name);
        }
        return new ImageDeleteResponse(untagged, deleted);
    }

    /// <summary>Imports an OCI image layout directory as an operation with one progress line per blob.
    /// <paramref name="name"/>: with a tag (or digest) the name for the layout's single image; without, the
    /// repository for images the layout names by tag only (org.opencontainers.image.ref.name).</summary>
    public Operation StartImportLayout(OperationManager operations, string path, string? name)
    {
        if (string.IsNullOrWhiteSpace(path)) throw EngineException.Invalid("path is empty");
        if (!Path.IsPathFullyQualified(path)) throw EngineException.Invalid($"path {path} is not absolute (it is a path on the daemon's host)");
        if (!Directory.Exists(path)) throw EngineException.NotFound($"{path}: no such directory");
        if (name is not null)
        {
            try { ReferenceStore.ValidateName(name); }
            catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
        }
        bool exact = name is not null && SplitName(name).Tag is not null || name?.Contains('@') == true;
        return operations.Start("image.import-layout", name ?? path, ctx => Task.FromResult<JsonElement?>(ImportLayout(ctx, path, name, exact)));
    }

    private JsonElement ImportLayout(OperationContext ctx, string path, string? name, bool exact)
    {
        LayoutImportResult result;
        try
        {
            result = OciLayout.Import(path, content, refs: null, repository: exact ? null : name, new LayoutImportOptions
            {
                Progress = p => ctx.Report(p.Action, p.Blob.Digest.ToString(),
                    p.Action is "done" or "exists" ? p.Blob.Size : 0, p.Blob.Size, p.Blob.MediaType),
                Cancel = ctx.Cancel,
            });
        }
        catch (ContentException e) { throw EngineException.Invalid(e.Message); }
        if (exact && result.Images.Count != 1)
            throw EngineException.Invalid($"{path} holds {result.Images.Count} images; name them with a repository only (no tag)");
        var names = new List<string>();
        foreach (LayoutImage image in result.Images)
        {
            string? n = exact ? name : image.Name;
            if (n is null)
            {
                names.Add(image.Target.Digest.ToString());
                ctx.Report("untagged", image.Target.Digest.ToString(), message: "the layout does not name this image; give a NAME to tag it");
                continue;
            }
            n = WithDefaultTag(n);
            refs.Tag(n, image.Target);
            names.Add(n);
            events.Publish("image", "import", image.Target.Digest.ToString(), n, new Dictionary<string, string> { ["source"] = path });
        }
        var r = new ImportLayoutResult(names, result.BlobsImported, result.MissingOptional.Count);
        return JsonSerializer.SerializeToElement(r, ApiJson.Default.ImportLayoutResult);
    }

    public IReadOnlyList<ImageReference> Find(string name) => Find(name, out _);

    /// <summary>Resolves what a user typed: an exact name, a name without tag (":latest" is added), a full
    /// digest or an id (config digest) / digest prefix of at least 4 hex digits.</summary>
    public IReadOnlyList<ImageReference> Find(string name, out bool byName)
    {
        byName = true;
        if (string.IsNullOrWhiteSpace(name)) throw EngineException.Invalid("image name is empty");
        IReadOnlyList<ImageReference> all = refs.List();
        ImageReference? exact = all.FirstOrDefault(r => r.Name == name) ?? all.FirstOrDefault(r => r.Name == WithDefaultTag(name));
        // What pull stores: the normalised reference (busybox → docker.io/library/busybox:latest).
        if (exact is null && Vessel.Images.References.ImageRef.TryParse(name, out var parsed, out _))
            exact = all.FirstOrDefault(r => r.Name == parsed.ToString());
        if (exact is not null) return [exact];
        byName = false;
        string hex = name.StartsWith("sha256:", StringComparison.Ordinal) ? name[7..] : name;
        if (hex.Length >= 4 && hex.Length <= 64 && hex.All(char.IsAsciiHexDigitLower))
        {
            var matches = all.Where(r => r.Target.Digest.Hex.StartsWith(hex, StringComparison.Ordinal)
                || Describe(r.Name, r.Target).Id.AsSpan(7).StartsWith(hex, StringComparison.Ordinal)).ToList();
            if (matches.Count > 0)
            {
                if (matches.Select(m => m.Target.Digest).Distinct().Count() > 1)
                    throw EngineException.Conflict($"{name} is ambiguous: it matches more than one image");
                return matches;
            }
        }
        throw EngineException.NotFound($"no such image: {name}");
    }

    private sealed record Details(string Id, long Size, ResolvedImage? Resolved, ImageConfig? Config, string? Problem);

    private Details Describe(string name, Descriptor target)
    {
        try
        {
            ResolvedImage r = _resolver.Resolve(name, target);
            long size = r.ManifestDescriptor.Size + r.Manifest.Config.Size + r.Manifest.Layers.Sum(l => l.Size);
            return new Details(r.Manifest.Config.Digest.ToString(), size, r, r.Config, null);
        }
        catch (ContentException e)
        {
            return new Details(target.Digest.ToString(), target.Size, null, null, e.Message);
        }
    }

    /// <summary>"repo:tag" → (repo, tag); "repo@sha256:…" → (repo, null); "repo" → (repo, null).</summary>
    public static (string Repository, string? Tag) SplitName(string name)
    {
        int at = name.IndexOf('@');
        if (at >= 0) return (name[..at], null);
        int slash = name.LastIndexOf('/');
        int colon = name.LastIndexOf(':');
        return colon > slash ? (name[..colon], name[(colon + 1)..]) : (name, null);
    }

    public static string WithDefaultTag(string name) =>
        name.Contains('@') || SplitName(name).Tag is not null ? name : name + ":latest";
}

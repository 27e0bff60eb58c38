using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Images.Interop;
using Vessel.Images.Oci;

namespace Vessel.Images.Content;

/// <summary>A name and the manifest (or index) it points at.</summary>
public sealed record ImageReference(string Name, Descriptor Target);

internal sealed record RefsFile
{
    [JsonPropertyName("version")] public int Version { get; init; } = 1;
    [JsonPropertyName("refs")] public Dictionary<string, Descriptor> Refs { get; init; } = new(StringComparer.Ordinal);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(RefsFile))]
internal sealed partial class RefsJsonContext : JsonSerializerContext;

/// <summary>Name → manifest/index descriptor map in <c>&lt;root&gt;/refs.json</c>. Every change rewrites the file
/// atomically (temp + fsync + rename) under an flock on <c>refs.lock</c>, so concurrent Vessel processes
/// don't lose each other's tags and a crash leaves the old or the new map. Names are kept as given
/// (normalising "busybox" to "docker.io/library/busybox:latest" belongs to the registry layer) but must be
/// printable, without whitespace, at most 512 bytes.</summary>
public sealed class ReferenceStore
{
    private readonly ContentStore _content;
    private readonly string _path;
    private readonly string _lockPath;

    public ReferenceStore(ContentStore content)
    {
        _content = content;
        _path = Path.Combine(content.Root, "refs.json");
        _lockPath = Path.Combine(content.Root, "refs.lock");
    }

    /// <summary>Points <paramref name="name"/> at <paramref name="target"/> (a manifest or index already in the
    /// content store), replacing any previous target.</summary>
    public void Tag(string name, Descriptor target)
    {
        ValidateName(name);
        if (!MediaTypes.IsManifest(target.MediaType) && !MediaTypes.IsIndex(target.MediaType))
            throw new ArgumentException($"cannot tag {name}: {target.Digest} has media type \"{target.MediaType}\", not a manifest or index", nameof(target));
        if (!_content.Exists(target.Digest))
            throw new ContentException($"cannot tag {name}: {target.Digest} is not in the content store");
        Update(refs => refs[name] = target with { Annotations = null, Platform = null });
    }

    public Descriptor? Resolve(string name) => Load().Refs.TryGetValue(name, out Descriptor? d) ? d : null;

    public bool Untag(string name)
    {
        bool removed = false;
        Update(refs => removed = refs.Remove(name));
        return removed;
    }

    public IReadOnlyList<ImageReference> List() =>
        Load().Refs.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new ImageReference(kv.Key, kv.Value)).ToList();

    public static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("image name is empty", nameof(name));
        if (System.Text.Encoding.UTF8.GetByteCount(name) > 512) throw new ArgumentException($"image name is longer than 512 bytes", nameof(name));
        foreach (char c in name)
            if (char.IsControl(c) || char.IsWhiteSpace(c))
                throw new ArgumentException($"image name \"{name}\" contains whitespace or a control character", nameof(name));
    }

    private RefsFile Load()
    {
        byte[] json;
        try { json = File.ReadAllBytes(_path); }
        catch (FileNotFoundException) { return new RefsFile(); }
        try
        {
            return JsonSerializer.Deserialize(json, RefsJsonContext.Default.RefsFile) ?? new RefsFile();
        }
        catch (JsonException e)
        {
            throw new ContentException($"reference store {_path} is corrupt: {e.Message}", e);
        }
    }

    private void Update(Action<Dictionary<string, Descriptor>> change)
    {
        int fd = Gc.StoreLock.OpenLockFile(_lockPath);
        using var closeFd = new FdCloser(fd);
        while (Libc.flock(fd, Libc.LOCK_EX) != 0)
            if (Libc.Errno != Libc.EINTR) throw new IOException($"flock {_lockPath}: {Libc.StrError(Libc.Errno)}");
        try
        {
            RefsFile file = Load();
            var refs = new Dictionary<string, Descriptor>(file.Refs, StringComparer.Ordinal);
            change(refs);
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(file with { Refs = refs }, RefsJsonContext.Default.RefsFile);
            AtomicFile.WriteAllBytes(_path, json);
        }
        finally
        {
            Libc.flock(fd, Libc.LOCK_UN);
        }
    }
}

/// <summary>Closes a raw fd on dispose.</summary>
internal readonly struct FdCloser(int fd) : IDisposable
{
    public void Dispose() => Libc.close(fd);
}

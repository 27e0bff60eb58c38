using System.Formats.Tar;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Vessel.Tests;

/// <summary>Writes a tiny OCI image layout by hand (one uncompressed layer with one file), independent of
/// Vessel.Images so the code under test does not check itself. Shared by the engine and CLI tests.</summary>
public static class TestLayout
{
    public sealed record Written(string Dir, string ManifestDigest, string ConfigDigest, string LayerDigest, long TotalSize);

    public static string Arch => RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "arm64" : "amd64";

    /// <param name="refName">org.opencontainers.image.ref.name of the single image (e.g. "1.0" or "example.com/app:1.0"), or null.</param>
    public static Written Write(string dir, string? refName, string content = "hello from a layer\n")
    {
        string blobs = Path.Combine(dir, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "etc/") { Mode = (UnixFileMode)0x1ed });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/hello.txt")
            {
                Mode = (UnixFileMode)0x1a4, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            });
        }
        (string layer, long layerSize) = Blob(blobs, tar.ToArray());
        string config = "{\"created\":\"2024-05-06T07:08:09Z\",\"architecture\":\"" + Arch + "\",\"os\":\"linux\","
            + "\"config\":{\"Cmd\":[\"/bin/sh\"],\"Env\":[\"PATH=/bin\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" + layer + "\"]}}";
        (string cfg, long cfgSize) = Blob(blobs, Encoding.UTF8.GetBytes(config));
        string manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
            + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + cfg + "\",\"size\":" + cfgSize + "},"
            + "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" + layer + "\",\"size\":" + layerSize + "}]}";
        (string man, long manSize) = Blob(blobs, Encoding.UTF8.GetBytes(manifest));
        string annotations = refName is null ? "" : ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"" + refName + "\"}";
        File.WriteAllText(Path.Combine(dir, "index.json"), "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
            + "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" + man + "\",\"size\":" + manSize + annotations + "}]}");
        File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        return new Written(dir, man, cfg, layer, layerSize + cfgSize + manSize);
    }

    private static (string Digest, long Size) Blob(string blobs, byte[] data)
    {
        string hex = Convert.ToHexStringLower(SHA256.HashData(data));
        File.WriteAllBytes(Path.Combine(blobs, hex), data);
        return ("sha256:" + hex, data.Length);
    }
}

/// <summary>A scratch directory /tmp/vessel-test-*, removed on Dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("vessel-test-").FullName;

    public string Sub(string name) => Directory.CreateDirectory(System.IO.Path.Combine(Path, name)).FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

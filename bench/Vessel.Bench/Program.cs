using System.Diagnostics;
using Vessel.Images.Archive;
using Vessel.Images.Content;
using Vessel.Images.Layers;
using Vessel.Images.Layout;
using Vessel.Images.Oci;
using Vessel.Images.References;
using Vessel.Images.Registry;

// vessel-bench: the image operations bench/images.sh times, each as one process like a CLI command would be.
// Exit codes: 0 done, 1 failed (one line on stderr), 2 usage.
const string Usage = """
    usage: vessel-bench unpack LAYER DIR          extract a layer blob (tar, gzip, zstd) into DIR (must not exist), as a snapshot unpack does
           vessel-bench pull REF ROOT             pull REF (loopback registries use http) into the store at ROOT
           vessel-bench import-rootfs TAR NAME ROOT   import a rootfs tarball as a one-layer image NAME
           vessel-bench push NAME REF ROOT        push the image NAME from the store at ROOT to REF
           vessel-bench export NAME DIR ROOT      write the image NAME as an OCI image layout in DIR
    """;

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}
var sw = Stopwatch.StartNew();
try
{
    switch (args[0], args.Length)
    {
        case ("unpack", 3): return Unpack(args[1], args[2]);
        case ("pull", 3):
        {
            var content = new ContentStore(args[2]);
            using var client = new RegistryClient(content, new ReferenceStore(content));
            PullResult r = client.PullAsync(ImageRef.Parse(args[1])).GetAwaiter().GetResult();
            Console.WriteLine($"pulled {r.Reference} {r.Target.Digest}: {r.BlobsDownloaded} blobs, {r.BytesDownloaded} bytes in {sw.ElapsedMilliseconds} ms");
            return 0;
        }
        case ("import-rootfs", 4):
        {
            var content = new ContentStore(args[3]);
            using FileStream tar = File.OpenRead(args[1]);
            RootfsImportResult r = RootfsImport.Import(tar, content, new ReferenceStore(content), args[2], what: args[1]);
            Console.WriteLine($"imported {r.Name} {r.Image.Manifest.Digest}: layer {r.Layer.Descriptor.Digest} ({r.Layer.Descriptor.Size} bytes) in {sw.ElapsedMilliseconds} ms");
            return 0;
        }
        case ("push", 4):
        {
            var content = new ContentStore(args[3]);
            using var client = new RegistryClient(content, new ReferenceStore(content));
            Digest d = client.PushAsync(args[1], ImageRef.Parse(args[2])).GetAwaiter().GetResult();
            Console.WriteLine($"pushed {args[1]} to {args[2]} {d} in {sw.ElapsedMilliseconds} ms");
            return 0;
        }
        case ("export", 4):
        {
            var content = new ContentStore(args[3]);
            Descriptor target = new ReferenceStore(content).Resolve(args[1]) ?? throw new ContentException($"image {args[1]} is not in the store {args[3]}");
            OciLayout.Export(args[2], content, [new LayoutImage(args[1], target)]);
            Console.WriteLine($"exported {args[1]} {target.Digest} to {args[2]}");
            return 0;
        }
        default:
            Console.Error.WriteLine(Usage);
            return 2;
    }
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    Console.Error.WriteLine($"vessel-bench {args[0]}: {e.Message.ReplaceLineEndings(" ")}");
    return 1;
}

// A layer blob named by its digest (blobs/sha256/<hex>, as in a store or OCI layout) is verified against it
// while it is read, as SnapshotStore.Unpack does; any other file is just read.
int Unpack(string layer, string dir)
{
    if (Directory.Exists(dir) || File.Exists(dir)) throw new IOException($"{dir} already exists (unpack wants a fresh snapshot dir)");
    Stream input = new FileStream(layer, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
    string name = Path.GetFileName(layer);
    string? layerId = null;
    if (Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(layer))) == Digest.Sha256 && Digest.TryParseHex(name, out Digest digest))
    {
        input = new VerifyingStream(input, digest, new FileInfo(layer).Length);
        layerId = digest.ToString();
    }
    using (input)
    {
        LayerExtractResult r = LayerExtractor.Extract(input, dir, layer, layerId, ExtractionOptions.Default);
        Console.WriteLine($"unpacked {r.Entries} entries, {r.Bytes} bytes ({r.Compression}), diff_id {r.DiffId}{(layerId is null ? "" : ", blob verified")} in {sw.ElapsedMilliseconds} ms");
        foreach (string w in r.Warnings) Console.Error.WriteLine($"warning: {w}");
    }
    return 0;
}

using System.Diagnostics;
using System.Formats.Tar;
using Vessel.Images.Content;
using Vessel.Images.Oci;
using Vessel.Images.Registry;

namespace Vessel.Images.Tests.Registry;

internal static class TestImages
{
    private static readonly Lazy<byte[]> s_busybox = new(() =>
    {
        using FileStream bb = File.OpenRead("/bin/busybox");
        var tb = new TarBuilder().Dir("bin/");
        tb.Add(new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox") { Mode = (UnixFileMode)0x1ed, ModificationTime = TarBuilder.Time, DataStream = bb });
        return TarBuilder.Gzip(tb.Symlink("bin/sh", "busybox").Build());
    });

    /// <summary>A gzip layer with /bin/busybox (the host's busybox-static) and /bin/sh → busybox.</summary>
    public static byte[] BusyboxLayer => s_busybox.Value;

    public static byte[] SmallLayer(string marker) => TarBuilder.Gzip(new TarBuilder().Dir("etc/").File("etc/marker", marker).Build());

    /// <summary>A busybox image (plus an optional small top layer) in the store: (manifest descriptor, layer digests).</summary>
    public static (Descriptor Manifest, ImageManifest Parsed) Busybox(ContentStore store, string? marker = null, string arch = "amd64")
    {
        byte[][] layers = marker is null ? [BusyboxLayer] : [BusyboxLayer, SmallLayer(marker)];
        (Descriptor m, _) = ImageBuilder.AddImage(store, arch, layers);
        ImageManifest parsed = OciJson.ParseManifest(store.ReadAllBytes(m.Digest, OciJson.MaxManifestSize), "test");
        return (m with { Platform = null }, parsed);
    }
}

internal sealed class ProgressLog : IProgress<TransferProgress>
{
    private readonly List<TransferProgress> _events = [];
    public void Report(TransferProgress value) { lock (_events) _events.Add(value); }
    public List<TransferProgress> Events { get { lock (_events) return [.. _events]; } }
    public IEnumerable<TransferPhase> PhasesOf(Digest d) => Events.Where(e => e.Digest == d).Select(e => e.Phase);
}

internal static class Cli
{
    /// <summary>Runs a program; stdout as bytes (exact), stderr as text.</summary>
    public static (int Code, byte[] Stdout, string Stderr) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException($"{file} {string.Join(' ', args)} timed out"); }
        return (p.ExitCode, ms.ToArray(), err.Result);
    }
}

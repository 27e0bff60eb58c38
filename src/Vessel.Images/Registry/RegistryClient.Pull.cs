using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Vessel.Images.Content;
using Vessel.Images.Oci;
using Vessel.Images.References;

namespace Vessel.Images.Registry;

public sealed partial class RegistryClient
{
    private const int MaxIndexDepth = 4;

    // One download per blob and content store in this process; other pulls of the same blob await it.
    private static readonly ConcurrentDictionary<string, Task> s_inflight = new(StringComparer.Ordinal);

    /// <summary>Pulls an image: manifest (an index is resolved to <see cref="RegistryOptions.Platform"/>), then config
    /// and layers in parallel into the content store, verified; finally tags <see cref="ImageRef.ToString"/> in the
    /// reference store, pointing at the top-level manifest or index.</summary>
    public async Task<PullResult> PullAsync(ImageRef image, IProgress<TransferProgress>? progress = null, CancellationToken ct = default)
    {
        string[] scopes = [$"repository:{image.Repository}:pull"];
        string name = image.ToString();
        (Descriptor target, byte[] body) = await FetchManifestAsync(image, image.ManifestReference, null, scopes, ct).ConfigureAwait(false);
        if (image.Digest is Digest want && target.Digest != want)
            throw new DigestMismatchException(want, $"image {name}: registry {image.Registry} sent a manifest that hashes to {target.Digest}, not the requested {want}");
        _store.Write(body, target.Digest);

        var resolver = new ImageResolver(_store, _refs);
        Descriptor manifestDesc = target;
        for (int depth = 0; MediaTypes.IsIndex(manifestDesc.MediaType); depth++)
        {
            if (depth >= MaxIndexDepth) throw new ContentException($"image {name}: indexes nested more than {MaxIndexDepth} deep");
            ImageIndex index = resolver.ReadIndex(manifestDesc, name);
            Descriptor? pick = index.Manifests.FirstOrDefault(m => _options.Platform.Matches(m.Platform) && (MediaTypes.IsManifest(m.MediaType) || MediaTypes.IsIndex(m.MediaType)));
            if (pick is null)
            {
                string available = string.Join(", ", index.Manifests.Where(m => m.Platform is not null && m.Platform.Os != "unknown").Select(m => m.Platform!.ToString()).Distinct());
                throw new ContentException($"image {name}: no manifest for platform {_options.Platform} (available: {(available.Length == 0 ? "none" : available)})");
            }
            if (!_store.Exists(pick.Digest))
            {
                (Descriptor child, byte[] childBody) = await FetchManifestAsync(image, pick.Digest.ToString(), pick, scopes, ct).ConfigureAwait(false);
                if (child.Digest != pick.Digest)
                    throw new DigestMismatchException(pick.Digest, $"image {name}: registry {image.Registry} sent a manifest that hashes to {child.Digest}, not {pick.Digest} listed in its index");
                _store.Write(childBody, pick.Digest);
            }
            manifestDesc = pick;
        }

        ImageManifest manifest = resolver.ReadManifest(manifestDesc, name);
        List<Descriptor> blobs = [manifest.Config, .. manifest.Layers];
        blobs = blobs.DistinctBy(b => b.Digest).ToList();
        foreach (Descriptor b in blobs) progress?.Report(new TransferProgress(b.Digest, b.MediaType, TransferPhase.Waiting, 0, b.Size));
        using var slots = new SemaphoreSlim(Math.Max(1, _options.MaxConcurrentTransfers));
        var counters = new Counters();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task[] tasks = blobs.Select(async b =>
        {
            try { await FetchBlobSharedAsync(image, b, slots, progress, counters, retryAfterOwnerFailure: true, failed.Token).ConfigureAwait(false); }
            catch { failed.Cancel(); throw; } // one failure stops the others (their partial files stay for a resume)
        }).ToArray();
        try { await Task.WhenAll(tasks).ConfigureAwait(false); }
        catch
        {
            // Report the first real failure, not the cancellations it caused.
            Exception? first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
            if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            throw;
        }

        resolver.Resolve(name, target, _options.Platform); // config parses, diff_ids match the layers
        await TagAsync(name, target, ct).ConfigureAwait(false);
        _sources.Record(image.Registry, image.Repository, blobs.Select(b => b.Digest));
        return new PullResult(image, target, manifestDesc, counters.Blobs, counters.Bytes);
    }

    private static readonly ConcurrentDictionary<string, SemaphoreSlim> s_tagLocks = new(StringComparer.Ordinal);

    /// <summary>ReferenceStore.Tag, serialised per store in this process and retried when another process holds
    /// refs.lock: ReferenceStore opens its lock file with a FileStream, and .NET's own advisory LOCK_SH|LOCK_NB
    /// on open fails (IOException) while anyone holds the LOCK_EX.</summary>
    private async Task TagAsync(string name, Descriptor target, CancellationToken ct)
    {
        SemaphoreSlim gate = s_tagLocks.GetOrAdd(_store.Root, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            for (int attempt = 1; ; attempt++)
            {
                try { _refs.Tag(name, target); return; }
                catch (IOException) when (attempt < 50) { await Task.Delay(20 * Math.Min(attempt, 10), ct).ConfigureAwait(false); }
            }
        }
        finally { gate.Release(); }
    }

    private sealed class Counters
    {
        private int _blobs;
        private long _bytes;
        public int Blobs => _blobs;
        public long Bytes => Interlocked.Read(ref _bytes);
        public void AddBlob() => Interlocked.Increment(ref _blobs);
        public void AddBytes(long n) => Interlocked.Add(ref _bytes, n);
    }

    /// <summary>GET /v2/NAME/manifests/REF, size-capped, its media type established from Content-Type (or the
    /// document), its digest computed from the bytes and checked against Docker-Content-Digest.</summary>
    private async Task<(Descriptor, byte[])> FetchManifestAsync(ImageRef image, string reference, Descriptor? expected, string[] scopes, CancellationToken ct)
    {
        string registry = image.Registry;
        Uri uri = ApiUri(registry, $"v2/{image.Repository}/manifests/{reference}");
        using HttpResponseMessage resp = await SendAsync(registry, () =>
        {
            var r = new HttpRequestMessage(HttpMethod.Get, uri);
            foreach (string a in ManifestAccept) r.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(a));
            return r;
        }, scopes, ct).ConfigureAwait(false);
        string shown = expected is null ? image.ToString() : $"{image.Name}@{reference}";
        if (!resp.IsSuccessStatusCode)
            throw await ErrorAsync(resp, registry, $"pull {shown}", $"image {shown} not found in {registry}", ct).ConfigureAwait(false);
        long max = expected?.Size ?? OciJson.MaxManifestSize;
        byte[] body = await ReadLimitedAsync(resp, Math.Min(max, OciJson.MaxManifestSize), registry, $"manifest of {shown}", ct).ConfigureAwait(false);
        Digest actual = Digest.Compute(body);
        if (resp.Headers.TryGetValues("Docker-Content-Digest", out var dcd) && dcd.FirstOrDefault() is string header
            && Digest.TryParse(header, out Digest claimed) && claimed != actual)
            throw new DigestMismatchException(claimed, $"image {shown}: manifest from {registry} hashes to {actual}, but the registry says {claimed} (corrupt or tampered)");

        string? contentType = resp.Content.Headers.ContentType?.MediaType;
        string? own = OciJson.DeclaredMediaType(body);
        string? mediaType = MediaTypes.IsManifest(contentType) || MediaTypes.IsIndex(contentType) ? contentType : own ?? OciJson.SniffMediaType(body);
        if (contentType is "application/vnd.docker.distribution.manifest.v1+prettyjws" or "application/vnd.docker.distribution.manifest.v1+json" || own?.StartsWith("application/vnd.docker.distribution.manifest.v1", StringComparison.Ordinal) == true)
            throw new ContentException($"image {shown}: registry {registry} only has a Docker schema 1 manifest (deprecated, not supported)");
        if (!MediaTypes.IsManifest(mediaType) && !MediaTypes.IsIndex(mediaType))
        {
            try { OciJson.SniffMediaType(body); OciJson.ParseIndex(body, ""); }
            catch (ContentException e) { throw new ContentException($"image {shown}: registry {registry} sent an invalid manifest: {e.Message.TrimStart(':', ' ')}"); }
            throw new ContentException($"image {shown}: registry {registry} sent a document of type \"{Clean(contentType ?? "?")}\" that is neither a manifest nor an index");
        }
        if (own is not null && own != mediaType)
            throw new ContentException($"image {shown}: manifest {actual} declares media type \"{Clean(own)}\" but the registry served it as \"{mediaType}\"");
        if (expected is not null && expected.MediaType != mediaType)
            throw new ContentException($"image {shown}: manifest {actual} is \"{mediaType}\" but its index says \"{expected.MediaType}\"");
        // Parse now so bad JSON is reported as the registry's fault, before anything is stored.
        if (MediaTypes.IsIndex(mediaType)) OciJson.ParseIndex(body, $"image {shown}: index from {registry}");
        else OciJson.ParseManifest(body, $"image {shown}: manifest from {registry}");
        return (new Descriptor { MediaType = mediaType!, Digest = actual, Size = body.Length }, body);
    }

    /// <summary>One download per (store, digest) in this process: later callers wait for the first. A waiter
    /// whose owner failed (e.g. was cancelled) tries once itself.</summary>
    private async Task FetchBlobSharedAsync(ImageRef image, Descriptor d, SemaphoreSlim slots, IProgress<TransferProgress>? progress,
        Counters counters, bool retryAfterOwnerFailure, CancellationToken ct)
    {
        string key = _store.Root + "\n" + d.Digest;
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task shared = s_inflight.GetOrAdd(key, tcs.Task);
        if (shared != tcs.Task)
        {
            progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Waiting, 0, d.Size));
            try
            {
                await shared.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (Exception) when (!ct.IsCancellationRequested && retryAfterOwnerFailure)
            {
                await FetchBlobSharedAsync(image, d, slots, progress, counters, retryAfterOwnerFailure: false, ct).ConfigureAwait(false);
                return;
            }
            progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Exists, d.Size, d.Size));
            return;
        }
        try
        {
            await slots.WaitAsync(ct).ConfigureAwait(false);
            try { await FetchBlobAsync(image, d, progress, counters, ct).ConfigureAwait(false); }
            finally { slots.Release(); }
            tcs.SetResult();
        }
        catch (Exception e)
        {
            tcs.SetException(e);
            _ = tcs.Task.Exception; // observed: waiters may be none
            throw;
        }
        finally
        {
            s_inflight.TryRemove(new KeyValuePair<string, Task>(key, tcs.Task));
        }
    }

    /// <summary>Downloads one blob into <c>ingest/pull-HEX</c> under an flock (other processes wait, then find the
    /// blob in the store), continuing a partial file with a Range request, verifying the digest over the whole
    /// file, and renaming it into the store.</summary>
    private async Task FetchBlobAsync(ImageRef image, Descriptor d, IProgress<TransferProgress>? progress, Counters counters, CancellationToken ct)
    {
        string partial = Path.Combine(_store.Root, "ingest", "pull-" + d.Digest.Hex);
        while (true)
        {
            if (_store.GetSize(d.Digest) == d.Size)
            {
                progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Exists, d.Size, d.Size));
                return;
            }
            using FileStream fs = FileLock.Open(partial, 0x1a4); // 0644 like the store's blobs
            if (Interop.Libc.flock((int)fs.SafeFileHandle.DangerousGetHandle(), Interop.Libc.LOCK_EX | FileLock.LOCK_NB) != 0)
            {
                progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Waiting, 0, d.Size));
                await FileLock.AcquireAsync(fs, partial, ct).ConfigureAwait(false);
            }
            try
            {
                // The holder we waited for may have finished (renamed our inode into the store) or discarded it.
                if (FileLock.InodeOf(fs) != FileLock.InodeOf(partial)) continue;
                if (_store.GetSize(d.Digest) == d.Size)
                {
                    AtomicFile.TryDelete(partial);
                    continue;
                }
                await DownloadLockedAsync(image, d, fs, partial, progress, counters, ct).ConfigureAwait(false);
                AtomicFile.Commit(partial, _store.BlobPath(d.Digest));
                counters.AddBlob();
                progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Done, d.Size, d.Size));
                return;
            }
            finally
            {
                FileLock.Release(fs);
            }
        }
    }

    private sealed class DownloadState : IDisposable
    {
        public long Offset;
        public IncrementalHash Hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        /// <summary>Some bytes in the file came from an earlier request (a previous run or a Range resume).</summary>
        public bool Resumed;

        public void Reset(FileStream fs)
        {
            fs.SetLength(0);
            fs.Position = 0;
            Offset = 0;
            Resumed = false;
            Hash.Dispose();
            Hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        }

        public void Dispose() => Hash.Dispose();
    }

    private async Task DownloadLockedAsync(ImageRef image, Descriptor d, FileStream fs, string partial, IProgress<TransferProgress>? progress,
        Counters counters, CancellationToken ct)
    {
        string registry = image.Registry;
        string what = $"blob {d.Digest.Short} of {image.Name}";
        using var st = new DownloadState();
        if (fs.Length > d.Size) st.Reset(fs);
        else
        {
            // Hash what an earlier, interrupted run left; the download continues after it.
            fs.Position = 0;
            byte[] pb = new byte[128 * 1024];
            int n;
            while ((n = await fs.ReadAsync(pb, ct).ConfigureAwait(false)) > 0) { st.Hash.AppendData(pb, 0, n); st.Offset += n; }
            st.Resumed = st.Offset > 0;
        }
        bool restarted = false;
        int attempt = 0;
        while (true)
        {
            if (st.Offset < d.Size)
            {
                attempt++;
                long before = st.Offset;
                try
                {
                    await DownloadRangeAsync(image, d, fs, st, progress, counters, what, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (IsInterruption(e, ct))
                {
                    st.Offset = fs.Position;
                    if (attempt >= Math.Max(1, _options.DownloadAttempts))
                    {
                        fs.Flush(flushToDisk: true); // keep what we have for the next pull
                        throw new RegistryException(RegistryErrorKind.Interrupted, registry,
                            $"download of {what} from {registry} interrupted at {st.Offset} of {d.Size} bytes ({Clean(InnermostMessage(e))}); pull again to resume", inner: e);
                    }
                    if (st.Offset > 0) st.Resumed = true;
                    if (st.Offset == before) await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), ct).ConfigureAwait(false);
                    continue;
                }
            }
            progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Verifying, st.Offset, d.Size));
            fs.Flush(flushToDisk: true);
            Digest actual = Digest.FromHash(st.Hash.GetHashAndReset());
            if (st.Offset == d.Size && actual == d.Digest) return;
            if (st.Resumed && !restarted)
            {
                // The stale part may be what is wrong (or the registry changed the bytes): start over once from zero.
                restarted = true;
                attempt = 0;
                st.Reset(fs);
                continue;
            }
            long got = st.Offset;
            st.Reset(fs);
            AtomicFile.TryDelete(partial);
            throw got != d.Size
                ? new DigestMismatchException(d.Digest, $"{what} from {registry}: content is {got} bytes, expected {d.Size}")
                : new DigestMismatchException(d.Digest, $"{what} from {registry}: content hashes to {actual}, expected {d.Digest} (corrupt or tampered)");
        }
    }

    /// <summary>One GET of the blob from <see cref="DownloadState.Offset"/> on (a Range request when resuming). A registry
    /// that ignores the Range and sends the whole blob is followed from zero.</summary>
    private async Task DownloadRangeAsync(ImageRef image, Descriptor d, FileStream fs, DownloadState st, IProgress<TransferProgress>? progress,
        Counters counters, string what, CancellationToken ct)
    {
        string registry = image.Registry;
        Uri uri = ApiUri(registry, $"v2/{image.Repository}/blobs/{d.Digest}");
        long from = st.Offset;
        using HttpResponseMessage resp = await SendAsync(registry, () =>
        {
            var r = new HttpRequestMessage(HttpMethod.Get, uri);
            if (from > 0) r.Headers.Range = new RangeHeaderValue(from, null);
            return r;
        }, [$"repository:{image.Repository}:pull"], ct).ConfigureAwait(false);
        if (resp.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && from > 0)
        {
            st.Reset(fs); // the partial file is longer than what the registry has: it was not this blob
            return;
        }
        if (!resp.IsSuccessStatusCode)
            throw await ErrorAsync(resp, registry, $"pull {image}", $"{what} not found in {registry}", ct).ConfigureAwait(false);
        if (from > 0 && !(resp.StatusCode == HttpStatusCode.PartialContent && resp.Content.Headers.ContentRange?.From == from))
            st.Reset(fs); // Range ignored: a clean restart with this full response
        else if (from == 0 && resp.StatusCode == HttpStatusCode.PartialContent)
            throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"{what}: registry {registry} sent a partial response to a full request");
        fs.Position = st.Offset;

        await using Stream body = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
        byte[] buf = new byte[128 * 1024];
        long lastReport = -1;
        while (true)
        {
            idle.CancelAfter(_options.IdleTimeout);
            int n = await body.ReadAsync(buf, idle.Token).ConfigureAwait(false);
            if (n == 0) break;
            if (st.Offset + n > d.Size)
            {
                st.Reset(fs);
                throw new DigestMismatchException(d.Digest, $"{what} from {registry}: content is larger than the expected {d.Size} bytes");
            }
            await fs.WriteAsync(buf.AsMemory(0, n), ct).ConfigureAwait(false);
            st.Hash.AppendData(buf, 0, n);
            st.Offset += n;
            counters.AddBytes(n);
            if (progress is not null && (st.Offset - lastReport >= 256 * 1024 || st.Offset == d.Size))
            {
                lastReport = st.Offset;
                progress.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Downloading, st.Offset, d.Size));
            }
        }
    }

    private static bool IsInterruption(Exception e, CancellationToken ct) => e switch
    {
        OperationCanceledException => !ct.IsCancellationRequested, // idle timeout
        RegistryException re => re.Kind == RegistryErrorKind.Unreachable,
        IOException or HttpRequestException => true,
        _ => false,
    };

    private static string InnermostMessage(Exception e)
    {
        if (e is OperationCanceledException) return "no data for too long";
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message;
    }
}

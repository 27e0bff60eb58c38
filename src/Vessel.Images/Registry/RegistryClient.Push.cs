using System.Net;
using System.Net.Http.Headers;
using Vessel.Images.Content;
using Vessel.Images.Oci;
using Vessel.Images.References;

namespace Vessel.Images.Registry;

public sealed partial class RegistryClient
{
    /// <summary>Pushes the image tagged <paramref name="localName"/> in the reference store to <paramref name="destination"/>.</summary>
    public Task<Digest> PushAsync(string localName, ImageRef destination, IProgress<TransferProgress>? progress = null, CancellationToken ct = default)
    {
        Descriptor target = _refs.Resolve(localName) ?? throw new ContentException($"image {localName}: no such image");
        return PushAsync(target, destination, progress, ct);
    }

    /// <summary>Pushes a manifest (or an index and every manifest it lists) from the content store: blobs the
    /// repository has are skipped (HEAD), blobs known to be in a sibling repository of the same registry are
    /// mounted, others uploaded (one PUT, or PATCH chunks above <see cref="RegistryOptions.UploadChunkSize"/>);
    /// then the manifest is PUT with its media type under the destination's tag (or digest). Returns the
    /// manifest digest.</summary>
    public async Task<Digest> PushAsync(Descriptor target, ImageRef destination, IProgress<TransferProgress>? progress = null, CancellationToken ct = default)
    {
        if (destination.Digest is Digest want && want != target.Digest)
            throw new ContentException($"cannot push {target.Digest} as {destination}: the reference names another digest");
        var resolver = new ImageResolver(_store, _refs);
        string name = destination.ToString();
        string[] scopes = [$"repository:{destination.Repository}:pull,push"];
        using var slots = new SemaphoreSlim(Math.Max(1, _options.MaxConcurrentTransfers));
        await PushTreeAsync(target, destination, destination.Tag ?? target.Digest.ToString(), resolver, name, scopes, slots, progress, 0, ct).ConfigureAwait(false);
        return target.Digest;
    }

    private async Task PushTreeAsync(Descriptor d, ImageRef dest, string reference, ImageResolver resolver, string name, string[] scopes,
        SemaphoreSlim slots, IProgress<TransferProgress>? progress, int depth, CancellationToken ct)
    {
        if (depth > MaxIndexDepth) throw new ContentException($"push {name}: indexes nested more than {MaxIndexDepth} deep");
        List<Digest> blobs = [];
        if (MediaTypes.IsIndex(d.MediaType))
        {
            ImageIndex index = resolver.ReadIndex(d, name);
            foreach (Descriptor m in index.Manifests)
            {
                if (!_store.Exists(m.Digest))
                    throw new ContentException($"push {name}: index {d.Digest.Short} lists {m.Platform?.ToString() ?? "a"} manifest {m.Digest.Short} that is not in the content store (only one platform was pulled); push that platform's manifest by itself instead");
                await PushTreeAsync(m, dest, m.Digest.ToString(), resolver, name, scopes, slots, progress, depth + 1, ct).ConfigureAwait(false);
            }
        }
        else if (MediaTypes.IsManifest(d.MediaType))
        {
            ImageManifest m = resolver.ReadManifest(d, name);
            List<Descriptor> all = [m.Config, .. m.Layers];
            all = all.DistinctBy(b => b.Digest).ToList();
            foreach (Descriptor b in all) progress?.Report(new TransferProgress(b.Digest, b.MediaType, TransferPhase.Waiting, 0, b.Size));
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
            Task[] tasks = all.Select(async b =>
            {
                await slots.WaitAsync(failed.Token).ConfigureAwait(false);
                try { await PushBlobAsync(dest, b, scopes, progress, failed.Token).ConfigureAwait(false); }
                catch { failed.Cancel(); throw; }
                finally { slots.Release(); }
            }).ToArray();
            try { await Task.WhenAll(tasks).ConfigureAwait(false); }
            catch
            {
                Exception? first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
                if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
                throw;
            }
            blobs.AddRange(all.Select(b => b.Digest));
        }
        else throw new ContentException($"push {name}: {d.Digest} has media type \"{d.MediaType}\", neither manifest nor index");

        // The bytes exactly as stored: re-serialising would change the digest.
        byte[] body = _store.ReadAllBytes(d.Digest, OciJson.MaxManifestSize, d.Size);
        string registry = dest.Registry;
        Uri uri = ApiUri(registry, $"v2/{dest.Repository}/manifests/{reference}");
        using HttpResponseMessage resp = await SendAsync(registry, () =>
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue(d.MediaType);
            return new HttpRequestMessage(HttpMethod.Put, uri) { Content = content };
        }, scopes, ct).ConfigureAwait(false);
        if (!resp.IsSuccessStatusCode)
            throw await ErrorAsync(resp, registry, $"push {name}", $"push {name}: repository {dest.Repository} not found in {registry}", ct).ConfigureAwait(false);
        if (resp.Headers.TryGetValues("Docker-Content-Digest", out var dcd) && dcd.FirstOrDefault() is string h
            && Digest.TryParse(h, out Digest got) && got != d.Digest)
            throw new DigestMismatchException(d.Digest, $"push {name}: registry {registry} stored the manifest as {got}, not {d.Digest}");
        _sources.Record(registry, dest.Repository, blobs);
    }

    private async Task PushBlobAsync(ImageRef dest, Descriptor d, string[] scopes, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        string registry = dest.Registry;
        string what = $"push {dest}: blob {d.Digest.Short}";
        long? local = _store.GetSize(d.Digest);
        if (local is null) throw new ContentException($"{what} is not in the content store");
        if (local != d.Size) throw new DigestMismatchException(d.Digest, $"{what} is {local} bytes in the content store, its descriptor says {d.Size}");

        // 1. Already there?
        Uri blobUri = ApiUri(registry, $"v2/{dest.Repository}/blobs/{d.Digest}");
        using (HttpResponseMessage head = await SendAsync(registry, () => new HttpRequestMessage(HttpMethod.Head, blobUri), scopes, ct).ConfigureAwait(false))
        {
            if (head.IsSuccessStatusCode)
            {
                progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Exists, d.Size, d.Size));
                return;
            }
            if (head.StatusCode != HttpStatusCode.NotFound)
                throw await ErrorAsync(head, registry, what, null, ct).ConfigureAwait(false);
        }

        // 2. Mount from a sibling repository we know holds it; a 202 means the registry opened an upload instead.
        Uri? location = null;
        string? from = _sources.Lookup(registry, d.Digest).FirstOrDefault(r => r != dest.Repository);
        if (from is not null)
        {
            Uri mountUri = ApiUri(registry, $"v2/{dest.Repository}/blobs/uploads/?mount={Uri.EscapeDataString(d.Digest.ToString())}&from={Uri.EscapeDataString(from)}");
            using HttpResponseMessage mount = await SendAsync(registry, () => new HttpRequestMessage(HttpMethod.Post, mountUri) { Content = new ByteArrayContent([]) },
                [.. scopes, $"repository:{from}:pull"], ct).ConfigureAwait(false);
            if (mount.StatusCode == HttpStatusCode.Created)
            {
                progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Mounted, d.Size, d.Size));
                return;
            }
            if (mount.StatusCode == HttpStatusCode.Accepted) location = LocationOf(mount, mountUri, registry, what);
            // anything else (no permission on the source, mounts unsupported): a plain upload
        }

        // 3. Upload.
        if (location is null)
        {
            Uri startUri = ApiUri(registry, $"v2/{dest.Repository}/blobs/uploads/");
            using HttpResponseMessage start = await SendAsync(registry, () => new HttpRequestMessage(HttpMethod.Post, startUri) { Content = new ByteArrayContent([]) }, scopes, ct).ConfigureAwait(false);
            if (start.StatusCode != HttpStatusCode.Accepted)
                throw await ErrorAsync(start, registry, what, $"{what}: repository {dest.Repository} not found in {registry}", ct).ConfigureAwait(false);
            location = LocationOf(start, startUri, registry, what);
        }

        long chunk = Math.Max(64 * 1024, _options.UploadChunkSize);
        using VerifyingStream src = _store.OpenRead(d.Digest, d.Size); // a corrupt local blob fails here, not at the registry
        if (d.Size > chunk)
        {
            byte[] buf = new byte[chunk];
            long sent = 0;
            while (sent < d.Size)
            {
                int n = 0;
                while (n < buf.Length)
                {
                    int r = await src.ReadAsync(buf.AsMemory(n), ct).ConfigureAwait(false);
                    if (r == 0) break;
                    n += r;
                }
                if (n == 0) break;
                long start = sent;
                Uri patchUri = location;
                using HttpResponseMessage patch = await SendAsync(registry, () =>
                {
                    var content = new ByteArrayContent(buf, 0, n);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + n - 1}");
                    return new HttpRequestMessage(HttpMethod.Patch, patchUri) { Content = content };
                }, scopes, ct).ConfigureAwait(false);
                if (patch.StatusCode != HttpStatusCode.Accepted)
                    throw await ErrorAsync(patch, registry, what, $"{what}: upload session vanished from {registry}", ct).ConfigureAwait(false);
                location = LocationOf(patch, patchUri, registry, what);
                sent += n;
                progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Uploading, sent, d.Size));
            }
            src.VerifyToEnd();
            await FinishUploadAsync(dest, d, location, null, scopes, what, ct).ConfigureAwait(false);
        }
        else
        {
            // Monolithic: buffer-free streaming, with progress as the handler reads.
            await FinishUploadAsync(dest, d, location, new ProgressStream(src, n =>
                progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Uploading, n, d.Size))), scopes, what, ct).ConfigureAwait(false);
        }
        progress?.Report(new TransferProgress(d.Digest, d.MediaType, TransferPhase.Done, d.Size, d.Size));
    }

    private async Task FinishUploadAsync(ImageRef dest, Descriptor d, Uri location, Stream? body, string[] scopes, string what, CancellationToken ct)
    {
        string registry = dest.Registry;
        string sep = string.IsNullOrEmpty(location.Query) ? "?" : "&";
        Uri put = new(location + sep + "digest=" + Uri.EscapeDataString(d.Digest.ToString()));
        bool used = false;
        using HttpResponseMessage resp = await SendAsync(registry, () =>
        {
            // A stream can be sent once; a second attempt (after an auth challenge) re-reads from the store.
            Stream s = body is not null && !used ? body : body is null ? new MemoryStream([]) : _store.OpenRead(d.Digest, d.Size);
            used = true;
            var content = new StreamContent(s);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Headers.ContentLength = body is null ? 0 : d.Size;
            return new HttpRequestMessage(HttpMethod.Put, put) { Content = content };
        }, scopes, ct).ConfigureAwait(false);
        if (resp.StatusCode != HttpStatusCode.Created)
        {
            RegistryException e = await ErrorAsync(resp, registry, what, $"{what}: upload session vanished from {registry}", ct).ConfigureAwait(false);
            if (e.ErrorCode is "DIGEST_INVALID" or "SIZE_INVALID")
                throw new DigestMismatchException(d.Digest, $"{what}: registry {registry} computed another digest or size for the uploaded content ({e.ErrorCode})");
            throw e;
        }
    }

    private static Uri LocationOf(HttpResponseMessage resp, Uri request, string registry, string what) =>
        resp.Headers.Location is Uri loc
            ? new Uri(request, loc)
            : throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"{what}: registry {registry} answered {(int)resp.StatusCode} without a Location header");

    /// <summary>Read-through stream that reports the running byte count.</summary>
    private sealed class ProgressStream(Stream inner, Action<long> report) : ReadOnlyStream
    {
        private long _done;
        private long _last = -1;

        public override int Read(Span<byte> buffer) => Account(inner.Read(buffer));
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
            Account(await inner.ReadAsync(buffer, ct).ConfigureAwait(false));
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        private int Account(int n)
        {
            _done += n;
            if (_done - _last >= 256 * 1024 || (n == 0 && _done != _last)) { _last = _done; report(_done); }
            return n;
        }

        public override long Position { get => _done; set => throw new NotSupportedException(); }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

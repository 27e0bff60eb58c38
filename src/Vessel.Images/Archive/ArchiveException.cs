using Vessel.Images.Content;

namespace Vessel.Images.Archive;

/// <summary>An image archive (docker-archive, oci-archive, rootfs tarball) was refused or could not be
/// read. The message is one line: <c>docker-archive busybox.tar: manifest.json: image 1: layer 2 "blobs/sha256/…" is not in the archive</c>.</summary>
public sealed class ArchiveException : ContentException
{
    public ArchiveException(string message) : base(message) { }
    public ArchiveException(string message, Exception inner) : base(message, inner) { }
}

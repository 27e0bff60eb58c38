using Vessel.Images.Content;

namespace Vessel.Images.Registry;

public enum TransferPhase
{
    /// <summary>Queued, or waiting for another pull (in this or another process) fetching the same blob.</summary>
    Waiting,
    Downloading,
    Uploading,
    /// <summary>All bytes are in; the digest is being checked.</summary>
    Verifying,
    /// <summary>Transferred and verified.</summary>
    Done,
    /// <summary>Nothing to transfer: the content store (pull) or the registry (push) already has it.</summary>
    Exists,
    /// <summary>Push: mounted from another repository of the same registry instead of uploaded.</summary>
    Mounted,
}

/// <summary>One progress event for one blob. <see cref="Total"/> is the descriptor's size.</summary>
public readonly record struct TransferProgress(Digest Digest, string MediaType, TransferPhase Phase, long Done, long Total);

namespace Vessel.Images.Content;

/// <summary>A problem with stored or incoming content (missing blob, digest or size mismatch, bad JSON).</summary>
public class ContentException : Exception
{
    public ContentException(string message) : base(message) { }
    public ContentException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Content did not hash to (or was not the size of) what its descriptor promised.</summary>
public sealed class DigestMismatchException : ContentException
{
    public Digest Expected { get; }

    public DigestMismatchException(Digest expected, string message) : base(message) => Expected = expected;
}

using System.Runtime.InteropServices;

namespace Vessel.Images.Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint llistxattr(string path, byte* list, nuint size);

    public const int ERANGE = 34;
}

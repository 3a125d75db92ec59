/*
 * bcryptprimitives.dll for Wine, built and used by `cargo xtask windows`
 * only: it is never shipped, and plays no part on real Windows.
 *
 * Why it exists: Wine 8 (Debian 12's) lacks ProcessPrng, which Rust's
 * standard library (1.78 and later) imports from bcryptprimitives.dll for
 * its random seeds (HashMap's keys among them). Wine 8 has no
 * bcryptprimitives.dll at all, so every Rust .exe fails to start under it:
 * the loader gives up before main with status c0000135
 * (STATUS_DLL_NOT_FOUND). xtask compiles this file with mingw-w64 and
 * copies the DLL beside the test executables, where Wine's loader finds it.
 *
 * ProcessPrng is advapi32's SystemFunction036 (RtlGenRandom), which Wine
 * has, asked for at most a ULONG's worth of bytes at a time.
 */
#include <limits.h>
#include <windows.h>

/* RtlGenRandom, under its exported name (ntsecapi.h declares it so too). */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > (SIZE_T)ULONG_MAX ? ULONG_MAX : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

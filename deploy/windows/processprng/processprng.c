/*
 * bcryptprimitives.dll shim for running the Windows build under Wine 8, in tests only.
 *
 * Rust's standard library (1.78 and later) gets its random bytes from ProcessPrng in
 * bcryptprimitives.dll. Windows 10 / Server 2016 and newer have that DLL; Wine 8 does not, so the
 * .exe does not even load there. Placed beside the .exe, this DLL exports ProcessPrng on top of
 * RtlGenRandom (advapi32's SystemFunction036), which Wine implements.
 *
 * Never ship it: real Windows has the genuine DLL. See README.md.
 */
#include <limits.h>
#include <windows.h>

/* ntstatus.h conflicts with windows.h; this is the only status needed. */
#define SHIM_STATUS_INTERNAL_ERROR 0xC00000E5u

/* RtlGenRandom; declared here rather than through <ntsecapi.h> to keep the build minimal. */
BOOLEAN WINAPI SystemFunction036(PVOID RandomBuffer, ULONG RandomBufferLength);

/*
 * Fills cbData bytes at pbData with cryptographically random bytes. Windows documents that it
 * always returns TRUE, and callers (Rust's std among them) do not check: so when the generator
 * fails, the process is terminated rather than left with bytes that are not random.
 */
BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData)
{
    while (cbData > 0) {
        ULONG chunk = cbData > (SIZE_T)ULONG_MAX ? ULONG_MAX : (ULONG)cbData;
        if (!SystemFunction036(pbData, chunk)) {
            TerminateProcess(GetCurrentProcess(), SHIM_STATUS_INTERNAL_ERROR);
        }
        pbData += chunk;
        cbData -= chunk;
    }
    return TRUE;
}

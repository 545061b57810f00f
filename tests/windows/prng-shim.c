/* Test-only stand-in for bcryptprimitives.dll's ProcessPrng, which Rust's std (1.78+) imports
 * and Wine 8 lacks: the .exe fails to load (c0000135) without it. Put next to the .exe only in
 * tests under Wine; never shipped. RtlGenRandom is advapi32's SystemFunction036. */
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    return RtlGenRandom(data, (ULONG)len);
}

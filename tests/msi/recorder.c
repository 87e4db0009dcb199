/* A stand-in for sc.exe and netsh.exe in the Wine prefix of scripts/test-packages: it appends
 * its whole command line to C:\recorded-commands.txt and succeeds, so the test can check the
 * exact commands the MSI's custom actions run. Wine's own sc.exe accepts `sc failure` without
 * storing it, and Wine has no firewall. The commands it stands in for are Microsoft's
 * documented `sc.exe failure` and `netsh advfirewall firewall add|delete rule`. */
#include <stdio.h>
#include <windows.h>

int main(void) {
    FILE *file = fopen("C:\\recorded-commands.txt", "a");
    if (file == NULL) {
        return 1;
    }
    fprintf(file, "%s\n", GetCommandLineA());
    fclose(file);
    return 0;
}

/* A stand-in for wevtapi.dll, the Windows event log API, for scripts/wine-smoke: Wine 8's
 * wevtapi knows no channels, so without this the exporter's event log reading (and the
 * bookmarks it keeps across restarts) never runs under Wine. See README.md beside it.
 *
 * It serves the events in C:\wevtapi\<channel>\<record id>.xml ('/' in the channel's name
 * written as '_'), record ids 1, 2, 3, ... in order, ignoring the XPath query (every event
 * matches), with the behaviour Microsoft documents for EvtQuery, EvtSeek, EvtNext, EvtRender,
 * EvtCreateBookmark, EvtUpdateBookmark and EvtClose, and bookmarks rendered in the form of
 * "Bookmarking Events". Each event rendered is appended to C:\wevtapi\rendered.txt as
 * "<channel> <record id>", so the test sees exactly which events the exporter read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

typedef HANDLE EVT_HANDLE;

/* winevt.h's values. */
#define EVT_RENDER_EVENT_XML 1
#define EVT_RENDER_BOOKMARK 2
#define EVT_SEEK_RELATIVE_TO_BOOKMARK 4
#define EVT_SEEK_STRICT 0x10000
#define ERROR_EVT_CHANNEL_NOT_FOUND_ 15007

#define ROOT L"C:\\wevtapi"
#define CHANNEL_CHARS 256

enum kind { QUERY, BOOKMARK, EVENT };

struct handle {
    enum kind kind;
    wchar_t channel[CHANNEL_CHARS];
    /* QUERY: the next record to return; BOOKMARK, EVENT: the record it is at (0: none). */
    unsigned long long record;
};

static struct handle *make(enum kind kind, const wchar_t *channel, unsigned long long record) {
    struct handle *h = calloc(1, sizeof *h);
    if (h == NULL) {
        SetLastError(ERROR_OUTOFMEMORY);
        return NULL;
    }
    h->kind = kind;
    wcsncpy(h->channel, channel, CHANNEL_CHARS - 1);
    h->record = record;
    return h;
}

/* C:\wevtapi\<channel>[\<record>.xml], with the channel's '/' as '_'. */
static void path_of(const wchar_t *channel, unsigned long long record, wchar_t *out, size_t size) {
    wchar_t name[CHANNEL_CHARS];
    wcsncpy(name, channel, CHANNEL_CHARS - 1);
    name[CHANNEL_CHARS - 1] = 0;
    for (wchar_t *c = name; *c; c++) {
        if (*c == L'/') {
            *c = L'_';
        }
    }
    if (record == 0) {
        swprintf(out, size, L"%ls\\%ls", ROOT, name);
    } else {
        swprintf(out, size, L"%ls\\%ls\\%llu.xml", ROOT, name, record);
    }
}

static int is_file(const wchar_t *path) {
    DWORD attributes = GetFileAttributesW(path);
    return attributes != INVALID_FILE_ATTRIBUTES && !(attributes & FILE_ATTRIBUTE_DIRECTORY);
}

static int event_exists(const wchar_t *channel, unsigned long long record) {
    wchar_t path[MAX_PATH];
    path_of(channel, record, path, MAX_PATH);
    return record > 0 && is_file(path);
}

EVT_HANDLE WINAPI EvtQuery(EVT_HANDLE session, LPCWSTR path, LPCWSTR query, DWORD flags) {
    wchar_t dir[MAX_PATH];
    DWORD attributes;
    FILE *log;
    (void)session;
    (void)flags;
    /* The query is not evaluated, only recorded (C:\wevtapi\queries.txt, "<channel>\t<query>"),
     * so a test sees what the exporter asked for. */
    if (query != NULL && (log = _wfopen(ROOT L"\\queries.txt", L"a")) != NULL) {
        fwprintf(log, L"%ls\t%ls\n", path, query);
        fclose(log);
    }
    path_of(path, 0, dir, MAX_PATH);
    attributes = GetFileAttributesW(dir);
    if (attributes == INVALID_FILE_ATTRIBUTES || !(attributes & FILE_ATTRIBUTE_DIRECTORY)) {
        SetLastError(ERROR_EVT_CHANNEL_NOT_FOUND_);
        return NULL;
    }
    return make(QUERY, path, 1);
}

/* A bookmark's XML: <BookmarkList><Bookmark Channel='...' RecordId='N' .../></BookmarkList>. */
EVT_HANDLE WINAPI EvtCreateBookmark(LPCWSTR xml) {
    struct handle *h = make(BOOKMARK, L"", 0);
    const wchar_t *at;
    if (h == NULL || xml == NULL) {
        return h;
    }
    if ((at = wcsstr(xml, L"Channel='")) != NULL) {
        const wchar_t *start = at + wcslen(L"Channel='");
        const wchar_t *end = wcschr(start, L'\'');
        size_t n = end == NULL ? 0 : (size_t)(end - start);
        if (n >= CHANNEL_CHARS) {
            n = CHANNEL_CHARS - 1;
        }
        wcsncpy(h->channel, start, n);
        h->channel[n] = 0;
    }
    if ((at = wcsstr(xml, L"RecordId='")) != NULL) {
        h->record = wcstoull(at + wcslen(L"RecordId='"), NULL, 10);
    }
    return h;
}

BOOL WINAPI EvtSeek(EVT_HANDLE results, LONGLONG position, EVT_HANDLE bookmark, DWORD timeout, DWORD flags) {
    struct handle *q = results, *b = bookmark;
    (void)timeout;
    if (q == NULL || b == NULL || !(flags & EVT_SEEK_RELATIVE_TO_BOOKMARK)) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    /* EvtSeekStrict: fail when the bookmarked event is gone (a cleared or wrapped log). */
    if ((flags & EVT_SEEK_STRICT) && !event_exists(q->channel, b->record)) {
        SetLastError(ERROR_NOT_FOUND);
        return FALSE;
    }
    q->record = b->record + position;
    return TRUE;
}

BOOL WINAPI EvtNext(EVT_HANDLE results, DWORD size, EVT_HANDLE *events, DWORD timeout, DWORD flags, PDWORD returned) {
    struct handle *q = results;
    DWORD n = 0;
    (void)timeout;
    (void)flags;
    while (n < size && event_exists(q->channel, q->record)) {
        events[n] = make(EVENT, q->channel, q->record);
        if (events[n] == NULL) {
            break;
        }
        n++;
        q->record++;
    }
    *returned = n;
    if (n == 0) {
        SetLastError(ERROR_NO_MORE_ITEMS);
        return FALSE;
    }
    return TRUE;
}

BOOL WINAPI EvtUpdateBookmark(EVT_HANDLE bookmark, EVT_HANDLE event) {
    struct handle *b = bookmark, *e = event;
    if (b == NULL || e == NULL || b->kind != BOOKMARK || e->kind != EVENT) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    wcscpy(b->channel, e->channel);
    b->record = e->record;
    return TRUE;
}

/* The event's file (UTF-8) as UTF-16, or NULL. */
static wchar_t *event_xml(const struct handle *e) {
    wchar_t path[MAX_PATH];
    FILE *file;
    char *bytes;
    wchar_t *text;
    long length;
    int chars;
    path_of(e->channel, e->record, path, MAX_PATH);
    if ((file = _wfopen(path, L"rb")) == NULL) {
        return NULL;
    }
    fseek(file, 0, SEEK_END);
    length = ftell(file);
    fseek(file, 0, SEEK_SET);
    bytes = malloc((size_t)length + 1);
    if (bytes == NULL || fread(bytes, 1, (size_t)length, file) != (size_t)length) {
        fclose(file);
        free(bytes);
        return NULL;
    }
    fclose(file);
    chars = MultiByteToWideChar(CP_UTF8, 0, bytes, (int)length, NULL, 0);
    text = calloc((size_t)chars + 1, sizeof *text);
    if (text != NULL) {
        MultiByteToWideChar(CP_UTF8, 0, bytes, (int)length, text, chars);
    }
    free(bytes);
    return text;
}

BOOL WINAPI EvtRender(EVT_HANDLE context, EVT_HANDLE fragment, DWORD flags, DWORD size, PVOID buffer,
                      PDWORD used, PDWORD count) {
    struct handle *h = fragment;
    wchar_t *text;
    DWORD need;
    (void)context;
    *count = 0;
    if (h == NULL) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    if (flags == EVT_RENDER_EVENT_XML && h->kind == EVENT) {
        text = event_xml(h);
    } else if (flags == EVT_RENDER_BOOKMARK && h->kind == BOOKMARK) {
        text = calloc(CHANNEL_CHARS + 128, sizeof *text);
        if (text != NULL) {
            swprintf(text, CHANNEL_CHARS + 128,
                     L"<BookmarkList>\r\n  <Bookmark Channel='%ls' RecordId='%llu' IsCurrent='true'/>\r\n</BookmarkList>",
                     h->channel, h->record);
        }
    } else {
        SetLastError(ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    if (text == NULL) {
        SetLastError(ERROR_FILE_NOT_FOUND);
        return FALSE;
    }
    need = (DWORD)((wcslen(text) + 1) * sizeof *text);
    *used = need;
    if (buffer == NULL || size < need) {
        free(text);
        SetLastError(ERROR_INSUFFICIENT_BUFFER);
        return FALSE;
    }
    memcpy(buffer, text, need);
    free(text);
    if (h->kind == EVENT) {
        FILE *log = _wfopen(ROOT L"\\rendered.txt", L"a");
        if (log != NULL) {
            fprintf(log, "%ls %llu\n", h->channel, h->record);
            fclose(log);
        }
    }
    return TRUE;
}

BOOL WINAPI EvtClose(EVT_HANDLE object) {
    free(object);
    return TRUE;
}

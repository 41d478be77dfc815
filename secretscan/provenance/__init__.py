"""Package provenance: which files of an image a package manager installed, and whether their
bytes are still what it installed.

Most of an image is third-party code that ships the same everywhere: its docstrings, examples and
fixtures are where image scanners find most of their false alarms. The managers that installed it
recorded what they wrote (pip's ``RECORD``, dpkg's ``.md5sums``, apk's ``installed``, each npm
package's ``package.json``, ...). A value seen only in files whose bytes match those records is
published with the package and is listed as such; a changed or added file inside a package is the
application's, and is reported with a note saying so.
"""

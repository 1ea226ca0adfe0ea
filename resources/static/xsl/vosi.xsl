<?xml version="1.0" encoding="UTF-8"?>
<!-- VOSI capabilities, tables and availability as a page for people.

     The XML documents name this stylesheet in an xml-stylesheet processing
     instruction (as DaCHS does), so a browser that runs XSLT shows this page;
     SKVO also applies it on the server (lxml) for browsers that ask for HTML,
     since Chromium is dropping XSLT.  Parameter "static": URL path of /static. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:cap="http://www.ivoa.net/xml/VOSICapabilities/v1.0"
    xmlns:tab="http://www.ivoa.net/xml/VOSITables/v1.0"
    xmlns:av="http://www.ivoa.net/xml/VOSIAvailability/v1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    exclude-result-prefixes="cap tab av xsi">

<xsl:output method="html" encoding="UTF-8" indent="yes"/>
<xsl:param name="static" select="'/static'"/>

<xsl:template match="/">
  <html lang="en">
  <head>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
    <title><xsl:call-template name="title"/></title>
    <link rel="stylesheet" href="{$static}/pages.css"/>
  </head>
  <body><main class="vosi">
    <h1><xsl:call-template name="title"/></h1>
    <xsl:apply-templates/>
  </main></body>
  </html>
</xsl:template>

<xsl:template name="title">
  <xsl:choose>
    <xsl:when test="cap:capabilities">Service capabilities (VOSI)</xsl:when>
    <xsl:when test="tab:tableset">Tables of this service (VOSI)</xsl:when>
    <xsl:when test="tab:table">Table <xsl:value-of select="tab:table/name"/> (VOSI)</xsl:when>
    <xsl:when test="av:availability">Service availability (VOSI)</xsl:when>
    <xsl:otherwise>VOSI document</xsl:otherwise>
  </xsl:choose>
</xsl:template>

<!-- ================================================================ capabilities -->

<xsl:template match="cap:capabilities">
  <p class="lead">What this service offers, as clients such as TOPCAT and pyvo read it.
    <xsl:value-of select="count(capability)"/> capabilities.</p>
  <nav class="toc"><ul>
    <xsl:for-each select="capability">
      <li><a href="#cap-{position()}"><xsl:call-template name="standard-name"/></a></li>
    </xsl:for-each>
  </ul></nav>
  <xsl:for-each select="capability">
    <section class="capability" id="cap-{position()}">
      <h2><xsl:call-template name="standard-name"/></h2>
      <p class="std"><code><xsl:value-of select="@standardID"/></code></p>
      <xsl:for-each select="interface">
        <p class="iface">
          <xsl:choose>
            <xsl:when test="@role='std'">Standard interface</xsl:when>
            <xsl:otherwise>Interface</xsl:otherwise>
          </xsl:choose>
          <xsl:if test="@version"> (version <xsl:value-of select="@version"/>)</xsl:if>:
          <xsl:for-each select="accessURL">
            <a href="{normalize-space(.)}"><xsl:value-of select="normalize-space(.)"/></a>
            <xsl:text> </xsl:text>
          </xsl:for-each>
        </p>
        <xsl:if test="param">
          <table class="params">
            <thead><tr><th>Parameter</th><th>Type</th><th>Unit</th><th>Meaning</th></tr></thead>
            <tbody>
              <xsl:for-each select="param">
                <tr><td><code><xsl:value-of select="name"/></code></td>
                  <td><xsl:value-of select="dataType"/></td>
                  <td><xsl:value-of select="unit"/></td>
                  <td><xsl:value-of select="description"/></td></tr>
              </xsl:for-each>
            </tbody>
          </table>
        </xsl:if>
      </xsl:for-each>
      <xsl:call-template name="tap-details"/>
      <xsl:call-template name="dal-details"/>
    </section>
  </xsl:for-each>
</xsl:template>

<xsl:template name="standard-name">
  <xsl:variable name="id" select="@standardID"/>
  <xsl:choose>
    <xsl:when test="$id='ivo://ivoa.net/std/TAP'">Table Access Protocol (TAP)</xsl:when>
    <xsl:when test="contains($id, 'std/ConeSearch')">Simple Cone Search</xsl:when>
    <xsl:when test="contains($id, 'std/SSA')">Simple Spectral Access (light curves)</xsl:when>
    <xsl:when test="contains($id, 'std/SIA')">Simple Image Access (frames)</xsl:when>
    <xsl:when test="contains($id, 'std/DataLink')">DataLink</xsl:when>
    <xsl:when test="contains($id, 'VOSI#capabilities')">VOSI capabilities (this page)</xsl:when>
    <xsl:when test="contains($id, 'VOSI#availability')">VOSI availability</xsl:when>
    <xsl:when test="contains($id, 'VOSI#tables')">VOSI tables</xsl:when>
    <xsl:when test="contains($id, 'DALI#examples')">Example queries</xsl:when>
    <xsl:otherwise><xsl:value-of select="$id"/></xsl:otherwise>
  </xsl:choose>
</xsl:template>

<xsl:template name="tap-details">
  <xsl:if test="language">
    <h3>Query languages</h3>
    <xsl:for-each select="language">
      <p><strong><xsl:value-of select="name"/></strong>
        <xsl:for-each select="version"><xsl:text> </xsl:text><xsl:value-of select="."/></xsl:for-each>:
        <xsl:value-of select="description"/></p>
      <details>
        <summary>Optional language features
          (<xsl:value-of select="count(languageFeatures/feature)"/>)</summary>
        <table class="features">
          <thead><tr><th>Feature</th><th>Kind</th><th>Notes</th></tr></thead>
          <tbody>
            <xsl:for-each select="languageFeatures/feature">
              <tr><td><code><xsl:value-of select="form"/></code></td>
                <td><xsl:value-of select="substring-after(../@type, '#')"/></td>
                <td><xsl:value-of select="description"/></td></tr>
            </xsl:for-each>
          </tbody>
        </table>
      </details>
    </xsl:for-each>
  </xsl:if>
  <xsl:if test="outputFormat">
    <h3>Output formats</h3>
    <table class="formats">
      <thead><tr><th>MIME type</th><th>Short names (RESPONSEFORMAT)</th></tr></thead>
      <tbody>
        <xsl:for-each select="outputFormat">
          <tr><td><code><xsl:value-of select="mime"/></code></td>
            <td><xsl:for-each select="alias"><code><xsl:value-of select="."/></code>
              <xsl:if test="position() != last()">, </xsl:if></xsl:for-each></td></tr>
        </xsl:for-each>
      </tbody>
    </table>
  </xsl:if>
  <xsl:if test="outputLimit or retentionPeriod or executionDuration or uploadLimit">
    <h3>Limits</h3>
    <table class="limits">
      <thead><tr><th>What</th><th>Default</th><th>Hard limit</th></tr></thead>
      <tbody>
        <xsl:for-each select="outputLimit">
          <tr><td>Rows per result (MAXREC)</td><td><xsl:value-of select="format-number(default, '#,##0')"/></td>
            <td><xsl:value-of select="format-number(hard, '#,##0')"/></td></tr>
        </xsl:for-each>
        <xsl:for-each select="executionDuration">
          <tr><td>Run time of an async job, s</td><td><xsl:value-of select="format-number(default, '#,##0')"/></td>
            <td><xsl:value-of select="format-number(hard, '#,##0')"/></td></tr>
        </xsl:for-each>
        <xsl:for-each select="retentionPeriod">
          <tr><td>Async jobs kept, s</td><td><xsl:value-of select="format-number(default, '#,##0')"/></td>
            <td><xsl:value-of select="format-number(hard, '#,##0')"/></td></tr>
        </xsl:for-each>
        <xsl:for-each select="uploadLimit">
          <tr><td>Upload size, bytes</td><td><xsl:value-of select="format-number(default, '#,##0')"/></td>
            <td><xsl:value-of select="format-number(hard, '#,##0')"/></td></tr>
        </xsl:for-each>
      </tbody>
    </table>
  </xsl:if>
  <xsl:if test="uploadMethod">
    <p>Uploads (TAP_UPLOAD):
      <xsl:for-each select="uploadMethod"><code><xsl:value-of
        select="substring-after(@ivo-id, '#')"/></code><xsl:if test="position() != last()">, </xsl:if>
      </xsl:for-each></p>
  </xsl:if>
  <xsl:if test="dataModel">
    <p>Data models: <xsl:for-each select="dataModel"><xsl:value-of select="."/>
      <xsl:if test="position() != last()">, </xsl:if></xsl:for-each></p>
  </xsl:if>
</xsl:template>

<xsl:template name="dal-details">
  <xsl:variable name="scalars" select="maxSR | maxRecords | defaultMaxRecords | maxSearchRadius
      | maxAperture | complianceLevel | dataSource | creationType | supportedFrame | verbosity"/>
  <xsl:if test="$scalars">
    <table class="limits">
      <tbody>
        <xsl:for-each select="$scalars">
          <tr><td><xsl:value-of select="local-name()"/></td><td><xsl:value-of select="."/></td></tr>
        </xsl:for-each>
      </tbody>
    </table>
  </xsl:if>
  <xsl:for-each select="testQuery">
    <p>Test query:
      <xsl:for-each select="*"><code><xsl:value-of select="local-name()"/>=<xsl:value-of
        select="."/></code><xsl:text> </xsl:text></xsl:for-each></p>
  </xsl:for-each>
</xsl:template>

<!-- ================================================================ tables -->

<xsl:template match="tab:tableset">
  <p class="lead">The tables ADQL queries can read:
    <xsl:value-of select="count(schema/table)"/> tables in
    <xsl:value-of select="count(schema)"/> schemas.</p>
  <nav class="toc"><ul>
    <xsl:for-each select="schema/table">
      <li><a href="#{name}"><xsl:value-of select="name"/></a></li>
    </xsl:for-each>
  </ul></nav>
  <xsl:for-each select="schema">
    <section class="schema">
      <h2>Schema <xsl:value-of select="name"/></h2>
      <p><xsl:value-of select="description"/></p>
      <xsl:for-each select="table"><xsl:call-template name="table"/></xsl:for-each>
    </section>
  </xsl:for-each>
</xsl:template>

<xsl:template match="tab:table">
  <xsl:for-each select="."><xsl:call-template name="table"/></xsl:for-each>
</xsl:template>

<xsl:template name="table">
  <section class="table" id="{name}">
    <h3><xsl:value-of select="name"/>
      <xsl:if test="@type and @type != 'table'"> (<xsl:value-of select="@type"/>)</xsl:if></h3>
    <p><xsl:value-of select="description"/></p>
    <xsl:if test="column">
      <div class="scroll"><table class="columns">
        <thead><tr><th>Column</th><th>Type</th><th>Unit</th><th>UCD</th><th>Description</th></tr></thead>
        <tbody>
          <xsl:for-each select="column">
            <tr><td><code><xsl:value-of select="name"/></code>
                <xsl:if test="flag='indexed'"> <span class="flag" title="indexed">idx</span></xsl:if></td>
              <td><xsl:value-of select="dataType"/><xsl:if test="dataType/@arraysize">[<xsl:value-of
                select="dataType/@arraysize"/>]</xsl:if></td>
              <td><xsl:value-of select="unit"/></td>
              <td><xsl:value-of select="ucd"/></td>
              <td><xsl:value-of select="description"/></td></tr>
          </xsl:for-each>
        </tbody>
      </table></div>
    </xsl:if>
    <xsl:for-each select="foreignKey">
      <p class="fk">Foreign key: <code><xsl:value-of select="fkColumn/fromColumn"/></code> →
        <a href="#{targetTable}"><xsl:value-of select="targetTable"/></a>.<code><xsl:value-of
          select="fkColumn/targetColumn"/></code></p>
    </xsl:for-each>
  </section>
</xsl:template>

<!-- ================================================================ availability -->

<xsl:template match="av:availability">
  <p class="availability">
    <xsl:choose>
      <xsl:when test="av:available='true'"><span class="up">Available</span></xsl:when>
      <xsl:otherwise><span class="down">Not available</span></xsl:otherwise>
    </xsl:choose>
  </p>
  <table class="limits"><tbody>
    <tr><td>Up since</td><td><xsl:value-of select="av:upSince"/></td></tr>
    <xsl:for-each select="av:note"><tr><td>Note</td><td><xsl:value-of select="."/></td></tr></xsl:for-each>
  </tbody></table>
</xsl:template>

</xsl:stylesheet>

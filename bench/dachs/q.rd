<!-- SKVO's benchmark anchor: the synthetic targets of bench/bench_tap.py
  (1,000,000 by default, uniform on the sphere, seed 1) as a DaCHS table
  published through TAP (skvobench.target) and a Simple Cone Search
  (skvobench/q/cone/scs.xml).

  This is our configuration for GAVO DaCHS, not DaCHS code: bench/dachs_anchor.py
  copies it to DaCHS's inputs directory as skvobench/q.rd, writes
  data/targets.csv beside it and runs dachs imp and dachs pub on it. -->

<resource schema="skvobench" resdir=".">
  <meta name="creationDate">2024-01-01T00:00:00Z</meta>
  <meta name="title">SKVO benchmark targets</meta>
  <meta name="description">
    Synthetic targets, uniform on the sky, against which SKVO's TAP and
    cone search benchmarks measure GAVO DaCHS in the same run.
  </meta>
  <meta name="subject">astronomical-object-identification</meta>
  <meta name="creator">SKVO benchmarks</meta>
  <meta name="contentLevel">Research</meta>
  <meta name="type">Catalog</meta>
  <meta name="coverage.waveband">Optical</meta>

  <table id="target" onDisk="True" mixin="//scs#q3cindex" adql="True">
    <meta name="description">Synthetic targets of the SKVO benchmarks.</meta>
    <primary>target_id</primary>
    <stc>
      Position ICRS "right_ascension" "declination"
    </stc>
    <column name="target_id" type="integer" required="True"
      ucd="meta.id;meta.main" tablehead="Id"
      description="Identifier of the target." verbLevel="1"/>
    <column name="target" type="text"
      ucd="meta.id" tablehead="Target"
      description="Name of the target." verbLevel="1"/>
    <column name="right_ascension" type="double precision"
      unit="deg" ucd="pos.eq.ra;meta.main" tablehead="RA"
      description="ICRS right ascension, J2000." verbLevel="1"/>
    <column name="declination" type="double precision"
      unit="deg" ucd="pos.eq.dec;meta.main" tablehead="Dec"
      description="ICRS declination, J2000." verbLevel="1"/>
    <column name="catalogue_value" type="text"
      ucd="meta.id.cross" tablehead="Cat. id"
      description="Identifier of the target in its catalogue." verbLevel="1"/>
  </table>

  <data id="import">
    <sources pattern="data/targets.csv"/>
    <csvGrammar names="target_id, target, right_ascension, declination, catalogue_value"/>
    <make table="target">
      <rowmaker idmaps="*"/>
    </make>
  </data>

  <service id="cone" allowed="scs.xml">
    <meta name="shortName">skvobench cone</meta>
    <meta name="title">SKVO benchmark cone search</meta>
    <meta name="testQuery">
      <meta name="ra">10</meta>
      <meta name="dec">10</meta>
      <meta name="sr">1</meta>
    </meta>
    <publish render="scs.xml" sets="local"/>
    <scsCore queriedTable="target">
      <FEED source="//scs#coreDescs"/>
    </scsCore>
  </service>
</resource>

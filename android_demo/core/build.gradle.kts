// Gradle build of the core for the Android Studio project (../app). CI builds the same sources
// with Maven (pom.xml) against Debian's offline repository instead.
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_11
    targetCompatibility = JavaVersion.VERSION_11
}

dependencies {
    // org.json is part of Android; this artifact is the same API for compiling and desktop tests.
    compileOnly("com.vaadin.external.google:android-json:0.0.20131108.vaadin1")
    testImplementation("com.vaadin.external.google:android-json:0.0.20131108.vaadin1")
    testImplementation("junit:junit:4.13.2")
}
